package check

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
)

// TestExamplesKubernetesManifests: the Deployment has an init container that
// runs `aion-exec once` into an emptyDir of medium Memory at the render
// directory, and a main container wrapped by `aion-exec --`; every
// container is non-root, with a read-only root file system, no privilege
// escalation and no capabilities; each container that logs in with AppRole
// has a secret ID of its own (a wrapped one is single use); the templates
// ConfigMap equals examples/node-service/templates and is mounted as a
// directory (so that the kubelet's ..data swap reaches aion-exec).
func TestExamplesKubernetesManifests(t *testing.T) {
	root := repoRoot(t)
	k := loadKube(t, root)
	for _, dname := range slices.Sorted(maps.Keys(k.Deployments)) {
		pod := k.Deployments[dname].Pod()
		if rn := pod.SecurityContext.RunAsNonRoot; rn == nil || !*rn {
			t.Errorf("Deployment %s: pod securityContext.runAsNonRoot is not true", dname)
		}
		var inits, mains int
		secretIDs := map[string]string{} // Secret/key -> container
		for _, ct := range pod.AllContainers() {
			where := fmt.Sprintf("Deployment %s container %s", dname, ct.Name)
			checkContainerSecurity(t, where, ct)
			switch role(ct) {
			case "init":
				inits++
			case "main":
				mains++
			}
			env, err := k.Env(ct)
			if err != nil {
				t.Fatal(err)
			}
			checkContainerMounts(t, root, k, pod, where, ct, env)
			if id, ok := secretID(t, pod, where, ct, env); ok {
				if other, dup := secretIDs[id]; dup {
					t.Errorf("%s and %s read the same secret ID (%s): a wrapped secret ID can be unwrapped once", other, ct.Name, id)
				}
				secretIDs[id] = ct.Name
			}
		}
		if inits == 0 || mains == 0 {
			t.Errorf("Deployment %s: %d `aion-exec once` init containers and %d `aion-exec --` containers; want one of each", dname, inits, mains)
		}
	}
}

// role is "init" for an init container that runs `aion-exec once` (as the
// aion-exec image's ENTRYPOINT or by name), "main" for a container that runs
// `aion-exec -- COMMAND`, else "".
func role(ct Container) string {
	argv := append(slices.Clone(ct.Command), ct.Args...)
	im, _ := ParseImage(ct.Image)
	switch {
	case ct.Init && (im.Repo == "aionos/aion-exec" && slices.Equal(argv, []string{"once"}) ||
		len(argv) == 2 && path.Base(argv[0]) == "aion-exec" && argv[1] == "once"):
		return "init"
	case !ct.Init && len(argv) > 2 && path.Base(argv[0]) == "aion-exec" && argv[1] == "--":
		return "main"
	}
	return ""
}

// checkContainerSecurity: a read-only root file system, no privilege
// escalation, no capabilities.
func checkContainerSecurity(t *testing.T, where string, ct Container) {
	t.Helper()
	sc := ct.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities.drop lacks ALL", where)
	}
}

// mountAt is the container's volume mount at p, and its pod volume.
func mountAt(pod PodSpec, ct Container, p string) (VolumeMount, Volume, bool) {
	for _, vm := range ct.VolumeMounts {
		if vm.MountPath == p {
			v, _ := pod.Volume(vm.Name)
			return vm, v, true
		}
	}
	return VolumeMount{}, Volume{}, false
}

// checkContainerMounts: the render directory is an emptyDir in memory;
// the templates directory is a ConfigMap of the manifests, mounted whole,
// equal to examples/node-service/templates.
func checkContainerMounts(t *testing.T, root string, k *Kube, pod PodSpec, where string, ct Container, env map[string]string) {
	t.Helper()
	rd := env["AION_RENDER_DIR"]
	if rd == "" {
		rd = "/run/aion-exec"
	}
	if _, v, ok := mountAt(pod, ct, rd); !ok || v.EmptyDir == nil || v.EmptyDir.Medium != "Memory" {
		t.Errorf("%s: the render directory %s is not an emptyDir of medium Memory", where, rd)
	}
	td := env["AION_TEMPLATES_DIR"]
	if td == "" {
		return
	}
	vm, v, ok := mountAt(pod, ct, td)
	if !ok {
		t.Errorf("%s: AION_TEMPLATES_DIR %s is not mounted", where, td)
		return
	}
	if vm.SubPath != "" {
		t.Errorf("%s: templates mounted with subPath, which the kubelet never updates", where)
	}
	var cm ConfigMap
	if v.ConfigMap != nil {
		cm, ok = k.ConfigMaps[v.ConfigMap.Name]
	}
	if v.ConfigMap == nil || !ok {
		t.Errorf("%s: templates volume is not a ConfigMap of the manifests", where)
		return
	}
	sameTemplates(t, root, v.ConfigMap.Name, cm.Data)
}

// secretID is the Secret and key the container's
// AION_VAULT_APPROLE_SECRET_ID_FILE is, if it has one.
func secretID(t *testing.T, pod PodSpec, where string, ct Container, env map[string]string) (string, bool) {
	t.Helper()
	f := env["AION_VAULT_APPROLE_SECRET_ID_FILE"]
	if f == "" {
		return "", false
	}
	_, v, ok := mountAt(pod, ct, path.Dir(f))
	if !ok {
		t.Errorf("%s: AION_VAULT_APPROLE_SECRET_ID_FILE %s is in no mounted volume", where, f)
		return "", false
	}
	name, key := "", ""
	if v.Secret != nil {
		name = v.Secret.SecretName
		for _, it := range v.Secret.Items {
			if it.Path == path.Base(f) {
				key = it.Key
			}
		}
	}
	return name + "/" + key, true
}

// sameTemplates checks that a templates ConfigMap holds exactly the files
// of examples/node-service/templates.
func sameTemplates(t *testing.T, root, name string, got map[string]string) {
	t.Helper()
	dir := filepath.Join(root, "examples/node-service/templates")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		want[e.Name()] = string(b)
	}
	if !maps.Equal(got, want) {
		t.Errorf("ConfigMap %s differs from examples/node-service/templates:\n%v\nwant\n%v", name, got, want)
	}
}
