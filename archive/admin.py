"""The data lifecycle in the admin, read-only: the retention policies, their history, the archive objects and the
purge records. The auditors' and the superusers' (fintech.policy.AUDIT_PAGES); changed only by commands."""

from django.contrib import admin

from archive.models import ArchiveObject, PurgeRecord, RetentionChange, RetentionPolicy
from fintech.admin import ReadOnlyAdmin


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ReadOnlyAdmin):
    list_display = ("kind", "hot_where", "hot", "warm_until", "cold_until", "keep", "applied_by", "changed_at")


@admin.register(RetentionChange)
class RetentionChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "kind", "os_user", "by_name", "reason")
    list_filter = ("kind",)


@admin.register(ArchiveObject)
class ArchiveObjectAdmin(ReadOnlyAdmin):
    list_display = ("kind", "period_start", "tier", "state", "row_count", "key", "written_at", "purged_at")
    list_filter = ("kind", "state", "tier")
    # The wrapped data key is of no use to a reader (it opens nothing without the vault's KEK), and binary.
    exclude = ("wrapped_key",)


@admin.register(PurgeRecord)
class PurgeRecordAdmin(ReadOnlyAdmin):
    list_display = ("purged_at", "kind", "period_start", "row_count", "key", "purged_by")
    list_filter = ("kind",)
