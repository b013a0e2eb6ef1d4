package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aionos/aion-exec/examples/check"
)

// TestRun: the JSON holds what the integration tests look up by name.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatal(err)
	}
	var top check.Topology
	if err := json.Unmarshal(out.Bytes(), &top); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.Bytes())
	}
	for _, name := range []string{"vault", "vault-bootstrap", "vault-config", "render-init", "postgres", "minio", "service"} {
		if _, ok := top.Compose.Services[name]; !ok {
			t.Errorf("no compose service %s", name)
		}
	}
	svc := top.Compose.Services["service"]
	if img, ok := top.Images[svc.Image]; !ok || len(img.Entrypoint) == 0 || len(img.Files) == 0 {
		t.Errorf("service's image %s: %+v, want its entrypoint and files", svc.Image, img)
	}
	if svc.Environment["AION_TEMPLATES_DIR"] != "/app/templates" || svc.Environment["PORT"] != "8080" {
		t.Errorf("service environment %v lacks the compose and image settings", svc.Environment)
	}
	pod, ok := top.Kubernetes.Deployments["node-service"]
	if !ok || len(pod.Containers) != 2 || !pod.Containers[0].Init || pod.Containers[1].Init {
		t.Errorf("Deployment node-service: %+v, want an init container and a main one", pod)
	}
	if len(top.Kubernetes.GeneratedSecrets) == 0 || top.Kubernetes.ConfigMaps["node-service-vault"] == nil {
		t.Errorf("kubernetes: %+v, want the generated Secret and the ConfigMap node-service-vault", top.Kubernetes)
	}
}
