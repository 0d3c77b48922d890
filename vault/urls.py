from fintech.routing import api_routes
from vault import api

urlpatterns = api_routes(
    [
        ("vault/tokens", api.TokenCreateApi, "vault-token-create"),
        ("vault/tokens/<str:token>/detokenize", api.TokenDetokenizeApi, "vault-detokenize"),
    ]
)
