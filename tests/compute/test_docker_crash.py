"""Crashes and races: a provision or update cut short after any Docker request ends right
when retried; concurrent provisions of one tenant end with one container."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiodocker
import pytest

from landlord_restate.compute import (
    ProvisionResult,
    TenantComputeSpec,
    UpdateFailedError,
    UpdateResult,
    UpdateStatus,
)
from landlord_restate.compute.docker import DockerProvider, create
from landlord_restate.testing._docker import DockerDaemon
from tests.compute.conftest import busybox_spec, new_tenant, provider_config, tenant_containers

T = TypeVar("T")


async def counted_requests(provider: DockerProvider) -> list[str]:
    """The Docker requests `provider` makes from now on, as "METHOD path" lines."""
    client = await provider._docker()
    original = client._do_query
    seen: list[str] = []

    async def counting(path: Any, method: str, **kwargs: Any) -> Any:
        response = await original(path, method, **kwargs)
        seen.append(f"{method} {path}")
        return response

    client._do_query = counting  # type: ignore[method-assign]
    return seen


async def cut_after(provider: DockerProvider, at: int | str) -> None:
    """Cancel the call in flight right after Docker answered its `at`-th request (or the
    first whose "METHOD path" starts with `at`), as a kill at that point would: Docker did
    it, the caller never learns."""
    client = await provider._docker()
    original = client._do_query
    answered = 0

    async def cutting(path: Any, method: str, **kwargs: Any) -> Any:
        nonlocal answered
        response = await original(path, method, **kwargs)
        answered += 1
        if answered == at if isinstance(at, int) else f"{method} {path}".startswith(at):
            response.close()
            raise asyncio.CancelledError
        return response

    client._do_query = cutting  # type: ignore[method-assign]


async def run_cut(
    daemon: DockerDaemon, at: int | str, call: Callable[[DockerProvider], Awaitable[T]],
) -> T | None:
    """`call` on a provider of its own, cut after `requests` Docker requests: its answer,
    or None when it was cut."""
    async with create(provider_config(daemon), env={}) as provider:
        await cut_after(provider, at)
        task = asyncio.ensure_future(call(provider))
        try:
            return await task
        except asyncio.CancelledError:
            assert task.cancelled()
            return None


async def one_running_container(
    client: aiodocker.Docker, tenant: str, spec_hash: str
) -> str:
    """The tenant has exactly one container, running, made for the plan `spec_hash`."""
    containers = await tenant_containers(client, tenant)
    assert len(containers) == 1, [c["Name"] for c in containers]
    (container,) = containers
    assert container["Name"] == f"/landlord-tenant-{tenant}"
    assert container["State"]["Running"]
    assert container["Config"]["Labels"]["landlord.spec_hash"] == spec_hash
    return str(container["Id"])


def plan_hash(provider: DockerProvider, spec: TenantComputeSpec) -> str:
    """The digest the provider records for `spec`."""
    return provider._plan(spec).digest()


def cut_points(requests: list[str]) -> list[int]:
    """Where a cut leaves Docker in a state of its own: before anything changed (after the
    first request), and after each request that changes something (not a GET; a failed
    lookup is no answer and is not counted)."""
    return [1, *(i for i, request in enumerate(requests, 1) if not request.startswith("GET"))]


async def test_update_cut_at_every_request_ends_right_on_retry(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """For every state a cut update can leave (cut after each Docker request that changes
    something), a retry ends with exactly one container, running the new spec, and the
    answer of an uncut update; once the cut update had removed the old container (it had
    done everything), the retry finds the spec running and answers `no_changes`, as
    Landlord does."""
    async def update_of(provider: DockerProvider, tenant: str) -> UpdateResult:
        return await provider.update(tenant, busybox_spec(docker_daemon, tenant, env={"V": "2"}))

    reference = new_tenant()
    await docker_provider.provision(busybox_spec(docker_daemon, reference, env={"V": "1"}))
    async with create(provider_config(docker_daemon), env={}) as counting:
        requests = await counted_requests(counting)
        uncut = await update_of(counting, reference)
    assert uncut.changes == ["environment variables changed"]
    cuts = cut_points(requests)
    changing = [requests[i - 1] for i in cuts[1:]]  # rename, create, stop, start, delete
    assert [r.split()[0] for r in changing] == ["POST"] * 4 + ["DELETE"], requests
    assert [r.rsplit("/", 1)[-1] for r in changing[:4]] == [
        "rename", "create", "stop", "start",
    ], requests
    await docker_provider.destroy(reference)

    async def cut_and_retry(cut: int) -> None:
        tenant = new_tenant()
        await docker_provider.provision(busybox_spec(docker_daemon, tenant, env={"V": "1"}))
        first = await run_cut(docker_daemon, cut, lambda p: update_of(p, tenant))
        retried = await update_of(docker_provider, tenant)
        done = requests[cut - 1].startswith("DELETE")  # the old container was removed
        expected = (
            (UpdateStatus.NO_CHANGES, [], "No changes detected") if done
            else (uncut.status, uncut.changes, uncut.message)
        )
        assert (retried.status, retried.changes, retried.message) == expected, (
            f"cut after request {cut}: {requests[cut - 1]}")
        if first is not None and not done:
            assert retried == first
        new_spec = busybox_spec(docker_daemon, tenant, env={"V": "2"})
        await one_running_container(docker_client, tenant, plan_hash(docker_provider, new_spec))
        await docker_provider.destroy(tenant)

    await asyncio.gather(*(cut_and_retry(cut) for cut in cuts))


async def test_provision_cut_at_every_request_ends_right_on_retry(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """A provision cut after any Docker request that changes something, retried, leaves one
    running container and answers as the cut call would have."""
    reference = new_tenant()
    async with create(provider_config(docker_daemon), env={}) as counting:
        requests = await counted_requests(counting)
        await counting.provision(busybox_spec(docker_daemon, reference))
    await docker_provider.destroy(reference)

    async def cut_and_retry(cut: int) -> None:
        tenant = new_tenant()
        spec = busybox_spec(docker_daemon, tenant)
        first: ProvisionResult | None = await run_cut(
            docker_daemon, cut, lambda p: p.provision(spec),
        )
        retried = await docker_provider.provision(spec)
        if first is not None:
            assert retried == first
        made = await one_running_container(docker_client, tenant, plan_hash(docker_provider, spec))
        assert retried.resource_ids == {"container_id": made}
        await docker_provider.destroy(tenant)

    await asyncio.gather(*(cut_and_retry(cut) for cut in cut_points(requests)))


async def test_concurrent_provisions_make_one_container(
    docker_daemon: DockerDaemon, docker_client: aiodocker.Docker,
) -> None:
    """Provisions of one tenant racing from three providers (three workers) and twice
    from one end with one container, and every one answers it."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant)
    providers = [create(provider_config(docker_daemon), env={}) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(p.provision(spec) for p in providers), providers[0].provision(spec),
        )
        made = await one_running_container(
            docker_client, tenant, plan_hash(providers[0], spec),
        )
        assert {r.resource_ids["container_id"] for r in results} == {made}
        await providers[0].destroy(tenant)
    finally:
        for provider in providers:
            await provider.aclose()


async def test_update_that_cannot_start_restores_the_old_container(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """An update whose container Docker refuses to start is Docker's refusal; the old
    container is back under its name and running, alone."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant)
    made = await docker_provider.provision(spec)
    with pytest.raises(UpdateFailedError) as caught:
        await docker_provider.update(
            tenant, busybox_spec(docker_daemon, tenant, command=["/no/such/binary"]),
        )
    assert caught.value.status == 400
    old = await one_running_container(docker_client, tenant, plan_hash(docker_provider, spec))
    assert old == made.resource_ids["container_id"]
    assert (await docker_provider.update(tenant, spec)).status is UpdateStatus.NO_CHANGES
    await docker_provider.destroy(tenant)


async def test_update_cut_then_asked_for_another_spec(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """An update cut after it created the new container (never started), then an update to
    a third spec: one container, the third spec, its changes counted from what ran."""
    tenant = new_tenant()
    await docker_provider.provision(busybox_spec(docker_daemon, tenant, env={"V": "1"}))
    cut = await run_cut(
        docker_daemon, "POST containers/create",
        lambda p: p.update(tenant, busybox_spec(docker_daemon, tenant, env={"V": "2"})),
    )
    assert cut is None
    third = busybox_spec(docker_daemon, tenant, env={"V": "2"}, restart_policy="always")
    result = await docker_provider.update(tenant, third)
    assert result.changes == ["environment variables changed", "restart policy changed"]
    await one_running_container(docker_client, tenant, plan_hash(docker_provider, third))
    (container,) = await tenant_containers(docker_client, tenant)
    assert json.loads(container["Config"]["Labels"]["landlord.changes"]) == result.changes
    await docker_provider.destroy(tenant)
