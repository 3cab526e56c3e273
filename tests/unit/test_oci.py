"""installer.format.oci.image_manifest: where only an image manifest will do (a platform's manifest, a chart's),
a signed index in its place is exit 3 with its sentence, never a crash on its missing config."""

import json

import pytest

from installer.errors import InvalidInput
from installer.format.oci import image_manifest

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DIGEST = "sha256:" + "a" * 64


def test_an_index_where_an_image_manifest_is_needed_is_exit_3():
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": DIGEST, "size": 10}]}).encode()
    with pytest.raises(InvalidInput) as caught:
        image_manifest(index, INDEX, "chart web")
    assert caught.value.exit_code == 3 and "chart web: an image index" in caught.value.message


def test_an_image_manifest_gives_its_config_and_layers():
    doc = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST,
                                  "size": 3}]}).encode()
    config, layers = image_manifest(doc, MANIFEST, "app")
    assert config.digest == DIGEST and [layer.size for layer in layers] == [3]
