"""A `spec.deploy` section for the small test manifests of conftest.write_manifest (pass it as ``extra``).

Before the stack became data, a bundle with tenant files got Kubernetes objects by itself; now a bundle gets
only the objects its deploy section declares. Tests about what the deploy step does with those objects
(secrets kept secret, links never followed, arguments quoted) declare these: a ConfigMap per tenant file and
the two Secrets made from what the site supplies (its TLS folder and its token).
"""

TENANT_OBJECTS = """\
  deploy:
    namespace: demo
    compose:
      env: {DEMO_TLS_DIR: tls, DEMO_TOKEN_DIR: token}
    kubernetes:
      configmaps:
        - name: demo-loki-overrides
          data: [{key: overrides.yaml, tenant: loki}]
        - name: demo-tempo-overrides
          data: [{key: tempo-overrides.yaml, tenant: tempo}]
      secrets:
        - name: demo-tls
          data: [{key: tls.crt, site: tls/tls.crt}, {key: tls.key, site: tls/tls.key}, {key: ca.crt, site: tls/ca.crt}]
        - name: demo-token
          data: [{key: token, site: token/token}]
"""
