//go:build integration

package integration

// The deployment examples (examples/compose, examples/kubernetes) cannot run
// here: there is no Docker engine and no cluster, in CI or on the
// developers' machines. Their static checks (they parse, the variables they
// set are known, images are pinned, paths exist, the Dockerfiles are
// static and non-root, ...) are examples/check's, a module of its own. The
// tests here run their topology as processes, from what examples/check's
// cmd/topology reads out of them:
//
//   - the compose topology: the pinned Vault release with
//     examples/compose/vault/vault.hcl, then each one-shot service's command
//     with that service's environment and volumes (mapped to directories),
//     then the Node service's environment as aion-exec gives it to node
//     (examples_compose_test.go);
//   - the Kubernetes init and main containers log in with their own wrapped
//     secret IDs and render what the manifests say, and a spent one fails
//     (examples_kube_test.go).
//
// The Node service against a real PostgreSQL is e2e_test.go's.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// exTopology is what examples/check's cmd/topology prints: the compose
// services, the images the compose file builds, and the Kubernetes pods.
// Paths on this machine are absolute.
type exTopology struct {
	Compose struct {
		Volumes  []string
		Services map[string]exService
	}
	Images     map[string]exImage // by repository
	Kubernetes struct {
		ConfigMaps       map[string]map[string]string `json:"config_maps"`
		GeneratedSecrets []string                     `json:"generated_secrets"`
		Deployments      map[string]exPod
	}
}

// exService is a compose service. Its environment is the image's ENV (of an
// image built here) under the service's environment, interpolated.
type exService struct {
	Image       string // repository
	Entrypoint  []string
	Command     []string
	WorkingDir  string `json:"working_dir"`
	Environment map[string]string
	Mounts      []exMount
}

// exMount is a volume, bind mount or tmpfs of a compose service, or a file
// of its image.
type exMount struct {
	Type     string // "bind", "volume", "tmpfs", "image"
	Source   string // a path on this machine, or a volume's name
	Target   string
	ReadOnly bool `json:"read_only"`
}

// exImage is what an image built here holds.
type exImage struct {
	Files      map[string]string // path in the image -> source on this machine
	Env        map[string]string
	Entrypoint []string
}

// exPod is a Deployment's pod template.
type exPod struct {
	Containers []exContainer
	Volumes    []struct {
		Name      string
		EmptyDir  bool   `json:"empty_dir"`
		ConfigMap string `json:"config_map"`
		Secret    string
		Items     []struct{ Key, Path string }
	}
}

// exContainer is a container of a pod; its environment is envFrom's
// ConfigMaps, then env.
type exContainer struct {
	Name          string
	Init          bool
	Image         string // repository
	Command, Args []string
	Env           map[string]string
	Mounts        []struct {
		Name      string
		MountPath string `json:"mount_path"`
	}
}

var exTopologyOnce struct {
	sync.Once
	top *exTopology
	err error
}

// exLoadTopology runs examples/check's cmd/topology, once for all tests.
func exLoadTopology(t testing.TB) *exTopology {
	t.Helper()
	exTopologyOnce.Do(func() {
		cmd := exec.Command("go", "run", "./cmd/topology")
		cmd.Dir = filepath.Join(repoRoot(), "examples", "check")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			exTopologyOnce.err = fmt.Errorf("examples/check: go run ./cmd/topology: %v\n%s", err, stderr.Bytes())
			return
		}
		var top exTopology
		if err := json.Unmarshal(out, &top); err != nil {
			exTopologyOnce.err = fmt.Errorf("examples/check: decode the topology: %w", err)
			return
		}
		exTopologyOnce.top = &top
	})
	if exTopologyOnce.err != nil {
		t.Fatal(exTopologyOnce.err)
	}
	return exTopologyOnce.top
}

// image is the image the repository builds for repo.
func (top *exTopology) image(t testing.TB, where, repo string) exImage {
	t.Helper()
	im, ok := top.Images[repo]
	if !ok {
		t.Fatalf("%s: image %s is not built by examples/compose", where, repo)
	}
	return im
}

// exProc is a container turned into a process: where its paths are on this
// machine, and its environment.
type exProc struct {
	where  string
	mounts []exMount // target -> host directory or file (source)
	env    map[string]string
}

// addImage mounts the files of an image at their paths in it.
func (p *exProc) addImage(im exImage) {
	for target, src := range im.Files {
		p.mounts = append(p.mounts, exMount{Type: "image", Source: src, Target: target})
	}
}

// resolve maps a container path to this machine: the longest mount target
// that holds it.
func (p *exProc) resolve(cpath string) (string, bool) {
	best := -1
	host := ""
	for _, m := range p.mounts {
		if (cpath == m.Target || strings.HasPrefix(cpath, strings.TrimSuffix(m.Target, "/")+"/")) && len(m.Target) > best {
			best = len(m.Target)
			host = filepath.Join(m.Source, strings.TrimPrefix(cpath, m.Target))
		}
	}
	return host, best >= 0
}

// hostEnv is the environment on this machine: Vault's address is the test
// Vault's, every absolute path is mapped; drop names variables to leave
// out. A path no mount holds is an error: the container would not have it.
func (p *exProc) hostEnv(t testing.TB, vaultAddr string, vaultHosts []string, drop ...string) []string {
	t.Helper()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(p.env)) {
		v := p.env[k]
		if slices.Contains(drop, k) {
			continue
		}
		switch {
		case k == "AION_VAULT_ADDR" || k == "VAULT_ADDR":
			u, err := url.Parse(v)
			if err != nil || !slices.Contains(vaultHosts, u.Host) {
				t.Errorf("%s: %s=%s, not Vault's address %v", p.where, k, v, vaultHosts)
			}
			v = vaultAddr
		case strings.HasPrefix(v, "/"):
			h, ok := p.resolve(v)
			if !ok {
				t.Errorf("%s: %s=%s, a path that no volume or image file provides", p.where, k, v)
			}
			v = h
		}
		out = append(out, k+"="+v)
	}
	return out
}

// exChildScript prints the child's environment, a separator line and the
// file that AION_DB_CREDENTIALS_FILE names: it stands in for node.
const exChildScript = `env; echo ---; cat "$AION_DB_CREDENTIALS_FILE"`

// exChildOutput splits exChildScript's output.
func exChildOutput(t testing.TB, out string) (map[string]string, map[string]any) {
	t.Helper()
	envText, creds, ok := strings.Cut(out, "\n---\n")
	if !ok {
		t.Fatalf("child output without separator:\n%s", out)
	}
	env := map[string]string{}
	for _, line := range strings.Split(envText, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(creds), &c); err != nil {
		t.Fatalf("db credentials file: %v\n%s", err, creds)
	}
	return env, c
}

// exNoTypos fails on aion-exec's warning about an AION_* variable it does
// not know.
func exNoTypos(t testing.TB, where string, r result) {
	t.Helper()
	if strings.Contains(r.Stderr, "not a setting of aion-exec") {
		t.Errorf("%s: aion-exec warns about a variable:\n%s", where, r.Stderr)
	}
}
