"""Docker loading against a fake engine on a unix socket: fault injection only (the real engine is tested
in tests/integration/test_images_install.py). Errors inside the load stream, and an image ID that is not
the config digest, are exit 10."""

import pytest

from installer.site.dockerload import Docker
from installer.errors import DeployError
from tests.helpers.fakeengine import fake_engine


def test_an_error_inside_the_load_stream_is_exit_10(tmp_path):
    server = fake_engine(tmp_path / "d.sock", [{"stream": "Loading layer"},
                                               {"errorDetail": {"message": "no space"},
                                                "error": "write /var/lib/docker: no space"}], "x")
    try:
        with pytest.raises(DeployError) as info:
            Docker(str(tmp_path / "d.sock")).load(iter([b"\0" * 1024]))
        assert info.value.exit_code == 10 and "no space" in info.value.message
    finally:
        server.shutdown()


def test_a_missing_engine_is_exit_10(tmp_path):
    with pytest.raises(DeployError) as info:
        Docker(str(tmp_path / "none.sock")).ping()
    assert info.value.exit_code == 10 and "Docker engine" in info.value.message
