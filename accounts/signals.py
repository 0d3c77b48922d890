"""What a cached API token principal depends on (accounts.principals), watched: any change to a token, to its
user, to the user's merchant or roles tombstones the entries concerned once it commits. Bulk `update()`s send no
signals: the services that make them (api_token_revoke) call principals_forget themselves."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from accounts.models import ApiToken, MerchantUser
from accounts.principals import principals_forget, principals_forget_users


def _token_changed(sender, instance: ApiToken, created: bool = False, **kwargs) -> None:
    if not created:  # a new token has nothing cached yet
        principals_forget([instance.key_hash])


def _user_changed(sender, instance, created: bool = False, update_fields=None, **kwargs) -> None:
    # A new user has no token yet; a login writes last_login only, nothing the policy reads.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    principals_forget_users([instance.pk])


def _link_changed(sender, instance: MerchantUser, **kwargs) -> None:
    principals_forget_users([instance.user_id])


def _membership_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if not action.startswith("post_") and action != "pre_clear":
        return
    if not reverse:  # user.groups.add(...): the instance is the user
        principals_forget_users([instance.pk])
    elif pk_set:  # group.user_set.add(...): the users are pk_set
        principals_forget_users(pk_set)
    elif action == "pre_clear":  # group.user_set.clear(): the users are those still in it
        principals_forget_users(instance.user_set.values_list("pk", flat=True))


def _group_changed(sender, instance: Group, **kwargs) -> None:
    # A renamed or deleted group is another role, or none, for every member.
    principals_forget_users(instance.user_set.values_list("pk", flat=True))


def connect() -> None:
    user_model = get_user_model()
    post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="principal-token-saved")
    post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="principal-token-deleted")
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="principal-user-saved")
    pre_delete.connect(_user_changed, sender=user_model, dispatch_uid="principal-user-deleted")
    post_save.connect(_link_changed, sender=MerchantUser, dispatch_uid="principal-link-saved")
    post_delete.connect(_link_changed, sender=MerchantUser, dispatch_uid="principal-link-deleted")
    m2m_changed.connect(_membership_changed, sender=user_model.groups.through, dispatch_uid="principal-roles")
    post_save.connect(_group_changed, sender=Group, dispatch_uid="principal-group-saved")
    pre_delete.connect(_group_changed, sender=Group, dispatch_uid="principal-group-deleted")
