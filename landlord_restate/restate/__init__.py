"""The Restate provider: config, admin and ingress clients, status mapping."""

from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.provider import RestateProvider

__all__ = ["RestateConfig", "RestateProvider"]
