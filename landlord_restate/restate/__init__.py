"""The Restate provider: config, admin and ingress clients, status mapping."""

from landlord_restate.restate.config import AuthType, ExecutionMechanism, RestateConfig
from landlord_restate.restate.provider import RestateProvider
from landlord_restate.restate.settings import load_config

__all__ = ["AuthType", "ExecutionMechanism", "RestateConfig", "RestateProvider", "load_config"]
