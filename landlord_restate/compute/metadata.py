"""The labels Landlord puts on everything a provider makes (Landlord's `metadata.go`)."""

from __future__ import annotations

from collections.abc import Mapping

from landlord_restate.compute.types import TenantComputeSpec

#: the prefix of every Landlord-managed label
METADATA_NAMESPACE = "landlord"
METADATA_OWNER_KEY = "landlord.owner"
METADATA_TENANT_ID_KEY = "landlord.tenant_id"
METADATA_PROVIDER_KEY = "landlord.provider"
METADATA_OWNER_VALUE = "landlord"


def default_metadata(spec: TenantComputeSpec) -> dict[str, str]:
    """The standard labels of the tenant's resources: owner, tenant id, and the provider
    when the spec names one."""
    metadata = {METADATA_OWNER_KEY: METADATA_OWNER_VALUE, METADATA_TENANT_ID_KEY: spec.tenant_id}
    if spec.provider_type:
        metadata[METADATA_PROVIDER_KEY] = spec.provider_type
    return metadata


def merge_labels(*label_sets: Mapping[str, str] | None) -> dict[str, str]:
    """Merge label maps in order, later ones winning (Landlord's `MergeLabels`; an empty
    result is an empty dict where Go answers nil)."""
    merged: dict[str, str] = {}
    for labels in label_sets:
        if labels:
            merged.update(labels)
    return merged
