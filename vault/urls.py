from django.urls import path

from vault import api

urlpatterns = [
    path("vault/tokens", api.TokenCreateApi.as_view(), name="vault-token-create"),
    path("vault/tokens/", api.TokenCreateApi.as_view()),
    path("vault/tokens/<str:token>/detokenize", api.TokenDetokenizeApi.as_view(), name="vault-detokenize"),
    path("vault/tokens/<str:token>/detokenize/", api.TokenDetokenizeApi.as_view()),
]
