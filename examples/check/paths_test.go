package check

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestExamplesImagesAndPaths: every image the examples name is built from a
// Dockerfile here or pinned by a tag other than latest; every build context,
// Dockerfile, bind-mounted file, env_file, named volume, depends_on target,
// kustomization resource and generator file exists; every ConfigMap and
// Secret a pod uses is in the manifests, generated, or named in the README
// as something to create.
func TestExamplesImagesAndPaths(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	built := builtImages(t, c)
	if len(built) < 2 {
		t.Errorf("compose builds %d images, want aion-exec's and the Node service's: %v", len(built), built)
	}
	for _, name := range c.ServiceNames() {
		s, _ := c.Service(name)
		where := fmt.Sprintf("%s service %s", Rel(root, c.File), name)
		if msg := ImageProblem(s.Image, built); msg != "" {
			t.Errorf("%s: image %q: %s", where, s.Image, msg)
		}
		checkServicePaths(t, root, c, s, where)
		checkDependsOn(t, c, s, where)
	}
	checkFromPinned(t, root)
	checkKubePaths(t, root, loadKube(t, root), built)
}

// checkServicePaths: the service's build, env_files and volumes exist.
func checkServicePaths(t *testing.T, root string, c *Compose, s types.ServiceConfig, where string) {
	t.Helper()
	if b, ok := BuildOf(s); ok {
		exists(t, root, where+" build.context", b.Context, true)
		exists(t, root, where+" build.dockerfile", b.Dockerfile, false)
		for _, cname := range slices.Sorted(maps.Keys(s.Build.AdditionalContexts)) {
			ref := s.Build.AdditionalContexts[cname]
			switch {
			case strings.HasPrefix(ref, types.ServicePrefix):
				other, ok := c.Service(strings.TrimPrefix(ref, types.ServicePrefix))
				if _, builds := BuildOf(other); !ok || !builds {
					t.Errorf("%s: build context %s=%s: no service %s that builds an image", where, cname, ref, strings.TrimPrefix(ref, types.ServicePrefix))
				}
			case strings.Contains(ref, "://"):
				t.Errorf("%s: build context %s=%s: not from this repository", where, cname, ref)
			default:
				p := ref
				if !filepath.IsAbs(p) {
					p = filepath.Join(c.Dir, p)
				}
				exists(t, root, where+" additional_contexts."+cname, p, true)
			}
		}
	}
	for _, f := range s.EnvFiles {
		exists(t, root, where+" env_file", f.Path, false)
	}
	for _, m := range Mounts(s) {
		switch m.Type {
		case types.VolumeTypeBind:
			// A target with a file extension mounts a file, else a directory.
			exists(t, root, where+" volume "+m.Target, m.Source, !strings.Contains(path.Base(m.Target), "."))
		case types.VolumeTypeVolume:
			if m.Source == "" {
				t.Errorf("%s: anonymous volume at %s; name it so that it is shared and kept", where, m.Target)
			} else if _, ok := c.Project.Volumes[m.Source]; !ok {
				t.Errorf("%s: volume %s is not declared under the top-level volumes", where, m.Source)
			}
		}
	}
}

// checkDependsOn: each service waited for exists and can meet the
// condition.
func checkDependsOn(t *testing.T, c *Compose, s types.ServiceConfig, where string) {
	t.Helper()
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		other, ok := c.Service(dep)
		if !ok {
			t.Errorf("%s: depends_on %s, which is not a service", where, dep)
			continue
		}
		switch s.DependsOn[dep].Condition {
		case types.ServiceConditionHealthy:
			if other.HealthCheck == nil || other.HealthCheck.Disable {
				t.Errorf("%s: waits for %s to be healthy, which has no healthcheck", where, dep)
			}
		case types.ServiceConditionCompletedSuccessfully:
			if r := other.Restart; r == types.RestartPolicyAlways || r == types.RestartPolicyUnlessStopped {
				t.Errorf("%s: waits for %s to complete, which restarts %s", where, dep, r)
			}
		}
	}
}

// checkFromPinned: every FROM of the Dockerfiles is pinned, or a stage of
// the same file.
func checkFromPinned(t *testing.T, root string) {
	t.Helper()
	for _, df := range dockerfiles(t, root) {
		var names []string
		for _, st := range parseDockerfile(t, df).Stages {
			if st.BaseName != "scratch" && !slices.Contains(names, strings.ToLower(st.BaseName)) {
				if msg := ImageProblem(st.BaseName, nil); msg != "" {
					t.Errorf("%s: FROM %s: %s", Rel(root, df), st.BaseName, msg)
				}
			}
			names = append(names, st.Name)
		}
	}
}

// checkKubePaths: the kustomization's resources, generator files and
// images; every pod volume's ConfigMap or Secret, and every container's
// image and volume mounts.
func checkKubePaths(t *testing.T, root string, k *Kube, built map[string]Build) {
	t.Helper()
	gen := k.Generated()
	readme, err := os.ReadFile(filepath.Join(k.Dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Kustomization != nil {
		for _, r := range k.Kustomization.Resources {
			exists(t, root, "kustomization.yaml resources", filepath.Join(k.Dir, r), false)
		}
		for _, im := range k.Kustomization.Images {
			if _, ok := built[im.Name]; !ok {
				t.Errorf("kustomization.yaml images: %s is not an image the repository builds (%v)", im.Name, slices.Sorted(maps.Keys(built)))
			}
			if im.NewTag == "" || im.NewTag == "latest" {
				t.Errorf("kustomization.yaml images: %s newTag %q; pin a tag", im.Name, im.NewTag)
			}
		}
	}
	for kind, byName := range gen {
		for name, files := range byName {
			for key, f := range files {
				exists(t, root, fmt.Sprintf("kustomization.yaml %s %s key %s", kind, name, key), f, false)
			}
		}
	}
	for _, dname := range slices.Sorted(maps.Keys(k.Deployments)) {
		pod := k.Deployments[dname].Pod()
		for _, v := range pod.Volumes {
			checkPodVolume(t, k, gen, readme, fmt.Sprintf("Deployment %s volume %s", dname, v.Name), v)
		}
		for _, ct := range pod.AllContainers() {
			where := fmt.Sprintf("Deployment %s container %s", dname, ct.Name)
			if msg := ImageProblem(ct.Image, built); msg != "" {
				t.Errorf("%s: image %q: %s", where, ct.Image, msg)
			}
			for _, vm := range ct.VolumeMounts {
				if _, ok := pod.Volume(vm.Name); !ok {
					t.Errorf("%s mounts volume %s, which the pod does not have", where, vm.Name)
				}
			}
		}
	}
}

// checkPodVolume: no hostPath; a ConfigMap or Secret is in the manifests,
// generated (with the keys the volume picks), or named in README.md.
func checkPodVolume(t *testing.T, k *Kube, gen map[string]map[string]map[string]string, readme []byte, where string, v Volume) {
	t.Helper()
	if v.HostPath != nil {
		t.Errorf("%s is a hostPath", where)
	}
	type ref struct {
		kind, name string
		items      []KeyToPath
	}
	var refs []ref
	if v.ConfigMap != nil {
		refs = append(refs, ref{"ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items})
	}
	if v.Secret != nil {
		refs = append(refs, ref{"Secret", v.Secret.SecretName, v.Secret.Items})
	}
	for _, r := range refs {
		_, inManifests := k.Objects[r.kind][r.name]
		keys, generated := gen[r.kind][r.name]
		if !inManifests && !generated && !bytes.Contains(readme, []byte(r.name)) {
			t.Errorf("%s: %s %s is neither in the manifests, nor generated, nor named in README.md", where, r.kind, r.name)
		}
		for _, it := range r.items {
			if _, ok := keys[it.Key]; generated && !ok {
				t.Errorf("%s: key %s is not in the generated %s %s", where, it.Key, r.kind, r.name)
			}
		}
	}
}
