"""The by-hand check of docs/VERIFY.md as data, for the report's "Check it yourself" section.

STEPS is docs/VERIFY.md's runnable `sh` blocks (those for every key type and those for one), in order, with the
heading each stands under. The installer ships no documents (the standalone installer carries only .py files), so
the blocks live here; tests/unit/test_report_byhand.py fails when they differ from the document by one byte, and
prints the blocks as they should be.
"""

from typing import Dict, List, Tuple

# (heading, key type or "" for every type, the block's shell text)
STEPS: Tuple[Tuple[str, str, str], ...] = (
    ('0. Transport check (optional)', '',
     r"""if [ -f "$B.sha256" ]; then (cd "$(dirname "$B")" && sha256sum -c --strict "$(basename "$B").sha256"); fi
"""),
    ('1. Extract only the signed list and its signature', '',
     r"""tar --zstd -xf "$B" --occurrence=1 --no-same-owner --no-same-permissions SHA256SUMS SHA256SUMS.sig
test "$(wc -c < SHA256SUMS.sig)" -le 1024
"""),
    ('2. Verify the signature over SHA256SUMS', 'ed25519',
     r"""openssl pkeyutl -verify -pubin -inkey "$PUB" -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
"""),
    ('2. Verify the signature over SHA256SUMS', 'ecdsa-p256',
     r"""openssl dgst -sha256 -verify "$PUB" -signature SHA256SUMS.sig SHA256SUMS
"""),
    ('3. The archive holds only regular files, exactly the signed ones', '',
     r"""tar --zstd -tvf "$B" > listing.txt
test -z "$(grep -v '^-' listing.txt)"
tar --zstd -tf "$B" > members.txt
test "$(head -n 2 members.txt | tr '\n' ' ')" = "SHA256SUMS SHA256SUMS.sig "
cut -c 67- SHA256SUMS > listed.txt
sed 1,2d members.txt | LC_ALL=C sort > members.sorted
diff listed.txt members.sorted
"""),
    ('3. The archive holds only regular files, exactly the signed ones', '',
     r"""test -z "$(grep -vE '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$' listed.txt)"
test -z "$(grep -E '(^|/)\.\.?(/|$)' listed.txt)"
test -z "$(LC_ALL=C sort -f listed.txt | uniq -di)"
LC_ALL=C sort -c listed.txt
"""),
    ('4. Extract and check every file', '',
     r"""mkdir tree
tar --zstd -xf "$B" -C tree --no-same-owner --no-same-permissions
(cd tree && sha256sum -c --strict --quiet ../SHA256SUMS)
"""),
    ('6. The provenance statement (in-toto, SLSA)', '',
     r"""E=tree/attestations/provenance.dsse.json
test "$(jq -r .payloadType "$E")" = application/vnd.in-toto+json
jq -r .payload "$E" | base64 -d > statement.json
jq -r '.signatures[0].sig' "$E" | base64 -d > provenance.sig
T=application/vnd.in-toto+json
printf 'DSSEv1 %d %s %d ' "${#T}" "$T" "$(wc -c < statement.json)" > provenance.pae
cat statement.json >> provenance.pae
"""),
    ('6. The provenance statement (in-toto, SLSA)', 'ed25519',
     r"""openssl pkeyutl -verify -pubin -inkey "$PUB" -rawin -in provenance.pae -sigfile provenance.sig
"""),
    ('6. The provenance statement (in-toto, SLSA)', 'ecdsa-p256',
     r"""openssl dgst -sha256 -verify "$PUB" -signature provenance.sig provenance.pae
"""),
    ('6. The provenance statement (in-toto, SLSA)', '',
     r"""test "$(jq -r ._type statement.json)" = https://in-toto.io/Statement/v1
test "$(jq -r .predicateType statement.json)" = https://slsa.dev/provenance/v1
jq -r '.subject[] | select(.name | test("[:@]") | not) | "\(.digest.sha256)  \(.name)"' statement.json > subjects.txt
grep -v -E '  (bundle\.json|DELTA\.json|attestations/provenance\.dsse\.json)$' SHA256SUMS | diff - subjects.txt
jq -r '.subject[] | select(.name | test("[:@]")) | "\(.name) sha256:\(.digest.sha256)"' statement.json \
  | LC_ALL=C sort > image-subjects.txt
jq -r '.images[] | .ref as $r | ([.digest] + [.manifests[].digest])[] | "\($r) \(.)"' tree/bundle.json \
  | LC_ALL=C sort -u | diff - image-subjects.txt
"""),
    ('6. The provenance statement (in-toto, SLSA)', '',
     r"""jq '{builder: .predicate.runDetails.builder.id, built: .predicate.runDetails.metadata.finishedOn,
     definition: .predicate.buildDefinition.externalParameters,
     tool: .predicate.buildDefinition.internalParameters.tool}' statement.json
"""),
)


def commands(archive: str, public_key: str, algorithm: str) -> List[Dict[str, str]]:
    """The procedure for this archive and key file: the two variables it starts with, then every step for the
    key's type (``ed25519`` or ``ecdsa-p256``), each as {say, run}."""
    out = [{"say": "Work in an empty folder, as a user who is not root; name the archive and the publisher's key",
            "run": "B=%s\nPUB=%s\n" % (quote(archive), quote(public_key))}]
    for heading, kind, body in STEPS:
        if kind in ("", algorithm):
            out.append({"say": heading + (" (%s)" % kind if kind else ""), "run": body})
    return out


def quote(value: str) -> str:
    """One shell word: single quotes, each ' as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"
