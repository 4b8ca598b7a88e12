"""The official Voucherify Python SDK, pointed at a live voucherd, parses what we answer."""

from __future__ import annotations

import pytest
import voucherify

from tests.conftest import LiveServer, ProjectKeys

pytestmark = pytest.mark.slow


def sdk_client(server: LiveServer, project: ProjectKeys) -> voucherify.ApiClient:
    config = voucherify.Configuration(
        host=server.url, api_key={"X-App-Id": project.app_id, "X-App-Token": project.app_token}
    )
    return voucherify.ApiClient(config)


def test_categories_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        api = voucherify.CategoriesApi(api_client)
        created = api.create_category(voucherify.CategoriesCreateRequestBody(name="Sale", hierarchy=2))
        assert created.id.startswith("cat_") and created.hierarchy == 2 and created.object == "category"
        assert api.get_category(created.id).name == "Sale"
        updated = api.update_category(created.id, voucherify.CategoriesUpdateRequestBody(name="Sale", hierarchy=3))
        assert updated.hierarchy == 3 and updated.updated_at is not None
        listing = api.list_categories()
        assert listing.total == 1 and [c.id for c in listing.data] == [created.id]
        api.delete_category(created.id)
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_category(created.id)
        assert raised.value.status == 404


def test_sdk_sees_a_wrong_key_as_401(live_server: LiveServer, project: ProjectKeys) -> None:
    wrong = ProjectKeys(project.project_id, project.app_id, "wrong", project.client_id, project.client_token)
    with sdk_client(live_server, wrong) as api_client, pytest.raises(voucherify.ApiException) as raised:
        voucherify.CategoriesApi(api_client).list_categories()
    assert raised.value.status == 401
