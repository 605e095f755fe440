"""Built-in handlers, registered on import."""

from services.handlers import tenant_provisioning

__all__ = ["tenant_provisioning"]
