package check

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Kube is examples/kubernetes: its objects and its kustomization.
type Kube struct {
	Dir           string // absolute
	Kustomization *Kustomization
	ConfigMaps    map[string]ConfigMap
	Deployments   map[string]Deployment
	// Objects names every object of the manifests: kind -> name -> file.
	Objects map[string]map[string]string
}

// LoadKube decodes every manifest of examples/kubernetes. Every object
// must have an apiVersion, a kind and a name, once; there must be a
// Deployment.
func LoadKube(root string) (*Kube, error) {
	k := &Kube{
		Dir:         filepath.Join(root, KubeDir),
		ConfigMaps:  map[string]ConfigMap{},
		Deployments: map[string]Deployment{},
		Objects:     map[string]map[string]string{},
	}
	files, err := YAMLFiles(root)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if !strings.HasPrefix(f, k.Dir+string(filepath.Separator)) {
			continue
		}
		docs, err := documents(f)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if err := k.add(Rel(root, f), d); err != nil {
				return nil, fmt.Errorf("load %s: document %d: %w", Rel(root, f), d.index, err)
			}
		}
	}
	if len(k.Deployments) == 0 {
		return nil, fmt.Errorf("load %s: no Deployment", KubeDir)
	}
	return k, nil
}

// add decodes one document of file.
func (k *Kube) add(file string, d document) error {
	var m Meta
	if err := d.node.Decode(&m); err != nil {
		return err
	}
	if m.Kind == "Kustomization" {
		k.Kustomization = &Kustomization{}
		return d.node.Decode(k.Kustomization)
	}
	name := m.Metadata.Name
	if m.APIVersion == "" || m.Kind == "" || name == "" {
		return fmt.Errorf("an object without apiVersion, kind or metadata.name")
	}
	if other, dup := k.Objects[m.Kind][name]; dup {
		return fmt.Errorf("%s %s defined twice (first in %s)", m.Kind, name, other)
	}
	if k.Objects[m.Kind] == nil {
		k.Objects[m.Kind] = map[string]string{}
	}
	k.Objects[m.Kind][name] = file
	switch m.Kind {
	case "ConfigMap":
		var cm ConfigMap
		err := d.node.Decode(&cm)
		k.ConfigMaps[name] = cm
		return err
	case "Deployment":
		var dep Deployment
		err := d.node.Decode(&dep)
		k.Deployments[name] = dep
		return err
	}
	return nil
}

// The Kubernetes objects and fields the checks read; the rest of a
// manifest is left undecoded.

// Meta is what every object has.
type Meta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
}

// ConfigMap is a ConfigMap's data.
type ConfigMap struct {
	Data map[string]string `yaml:"data"`
}

// Deployment is a Deployment's pod template.
type Deployment struct {
	Spec struct {
		Template struct {
			Spec PodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// Pod is the Deployment's pod template's spec.
func (d Deployment) Pod() PodSpec {
	return d.Spec.Template.Spec
}

// PodSpec is a pod's containers and volumes.
type PodSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	InitContainers []Container `yaml:"initContainers"`
	Containers     []Container `yaml:"containers"`
	Volumes        []Volume    `yaml:"volumes"`
}

// Container is one container of a pod.
type Container struct {
	Init    bool `yaml:"-"` // an init container
	Name    string
	Image   string
	Command []string
	Args    []string
	Env     []struct {
		Name  string
		Value string
	}
	EnvFrom []struct {
		Prefix       string
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string
		}
	} `yaml:"securityContext"`
	VolumeMounts []VolumeMount `yaml:"volumeMounts"`
}

// VolumeMount is where a container mounts a pod volume.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `yaml:"mountPath" json:"mount_path"`
	SubPath   string `yaml:"subPath" json:"-"`
}

// Volume is a pod volume.
type Volume struct {
	Name      string
	EmptyDir  *struct{ Medium string } `yaml:"emptyDir"`
	HostPath  *struct{ Path string }   `yaml:"hostPath"`
	ConfigMap *struct {
		Name  string
		Items []KeyToPath
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
		Items      []KeyToPath
	} `yaml:"secret"`
}

// KeyToPath puts one key of a ConfigMap or Secret at a path of its volume.
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

// Kustomization is kustomization.yaml.
type Kustomization struct {
	Resources          []string
	ConfigMapGenerator []Generator `yaml:"configMapGenerator"`
	SecretGenerator    []Generator `yaml:"secretGenerator"`
	Images             []struct {
		Name   string
		NewTag string `yaml:"newTag"`
	}
}

// Generator is a ConfigMap or Secret made by the kustomization from files.
type Generator struct {
	Name  string
	Files []string
}

// AllContainers lists the init containers, then the others.
func (p PodSpec) AllContainers() []Container {
	var out []Container
	for _, c := range p.InitContainers {
		c.Init = true
		out = append(out, c)
	}
	return append(out, p.Containers...)
}

// Volume is the pod volume of that name.
func (p PodSpec) Volume(name string) (Volume, bool) {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return Volume{}, false
}

// Env is the container's environment as the kubelet builds it: the
// envFrom ConfigMaps, then env. Values from Secrets or fields are not
// followed.
func (k *Kube) Env(c Container) (map[string]string, error) {
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm, ok := k.ConfigMaps[ef.ConfigMapRef.Name]
		if !ok {
			return nil, fmt.Errorf("container %s: envFrom ConfigMap %q is not in the manifests", c.Name, ef.ConfigMapRef.Name)
		}
		for key, v := range cm.Data {
			out[ef.Prefix+key] = v
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out, nil
}

// Generated lists the ConfigMaps and Secrets that the kustomization
// generates, as kind -> name -> key -> the file (absolute) it holds.
func (k *Kube) Generated() map[string]map[string]map[string]string {
	out := map[string]map[string]map[string]string{"ConfigMap": {}, "Secret": {}}
	if k.Kustomization == nil {
		return out
	}
	for kind, gens := range map[string][]Generator{"ConfigMap": k.Kustomization.ConfigMapGenerator, "Secret": k.Kustomization.SecretGenerator} {
		for _, g := range gens {
			files := map[string]string{}
			for _, f := range g.Files {
				key, p, ok := strings.Cut(f, "=")
				if !ok {
					key, p = filepath.Base(f), f
				}
				files[key] = filepath.Join(k.Dir, p)
			}
			out[kind][g.Name] = files
		}
	}
	return out
}
