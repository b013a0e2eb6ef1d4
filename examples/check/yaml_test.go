package check

import "testing"

// TestExamplesYAMLParses: every YAML file in examples/compose and
// examples/kubernetes parses, every document of it, with no duplicate keys;
// the compose file is one document that compose loads, and every service
// has an image or a build; every Kubernetes object has an apiVersion, a
// kind and a name, once, and there is a kustomization.yaml.
func TestExamplesYAMLParses(t *testing.T) {
	root := repoRoot(t)
	files, err := YAMLFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		docs, err := Documents(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s: no documents", Rel(root, f))
		}
		t.Logf("%s: %d documents", Rel(root, f), len(docs))
	}
	c := loadCompose(t, root)
	if docs, err := Documents(c.File); err != nil || len(docs) != 1 {
		t.Errorf("%s: %d documents, want 1 (%v)", Rel(root, c.File), len(docs), err)
	}
	for _, name := range c.ServiceNames() {
		if s, _ := c.Service(name); s.Image == "" && s.Build == nil {
			t.Errorf("compose service %s has neither image nor build", name)
		}
	}
	if k := loadKube(t, root); k.Kustomization == nil {
		t.Errorf("%s has no kustomization.yaml", KubeDir)
	}
}
