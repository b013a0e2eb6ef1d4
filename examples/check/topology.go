package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Topology is what the integration tests run as processes
// (integration/examples_*_test.go): the compose services and the
// Kubernetes containers, each with its command, environment and mounts,
// and the files and ENV of the images the compose file builds. Paths on
// this machine are absolute; paths in a container are as written.
type Topology struct {
	Compose    ComposeTopology       `json:"compose"`
	Images     map[string]BuiltImage `json:"images"` // by repository
	Kubernetes KubeTopology          `json:"kubernetes"`
}

// ComposeTopology is the compose file's services and named volumes.
type ComposeTopology struct {
	Volumes  []string           `json:"volumes"`
	Services map[string]Service `json:"services"`
}

// Service is one compose service as its container starts.
type Service struct {
	Image      string   `json:"image"` // repository
	Entrypoint []string `json:"entrypoint,omitempty"`
	Command    []string `json:"command,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	// Environment is the image's ENV (of an image built here) under the
	// service's environment, interpolated.
	Environment map[string]string `json:"environment"`
	Mounts      []Mount           `json:"mounts"`
}

// BuiltImage is what an image built here holds.
type BuiltImage struct {
	Files      map[string]string `json:"files"` // path in the image -> its source on this machine
	Env        map[string]string `json:"env"`
	Entrypoint []string          `json:"entrypoint"`
}

// KubeTopology is what the Kubernetes example's pods are made of.
type KubeTopology struct {
	ConfigMaps       map[string]map[string]string `json:"config_maps"`
	GeneratedSecrets []string                     `json:"generated_secrets"`
	Deployments      map[string]Pod               `json:"deployments"`
}

// Pod is a Deployment's pod template.
type Pod struct {
	Containers []PodContainer `json:"containers"`
	Volumes    []PodVolume    `json:"volumes"`
}

// PodContainer is one container of a pod.
type PodContainer struct {
	Name    string            `json:"name"`
	Init    bool              `json:"init,omitempty"`
	Image   string            `json:"image"` // repository
	Command []string          `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env"` // envFrom ConfigMaps, then env
	Mounts  []VolumeMount     `json:"mounts"`
}

// PodVolume is a pod volume: an emptyDir, a ConfigMap or a Secret.
type PodVolume struct {
	Name      string      `json:"name"`
	EmptyDir  bool        `json:"empty_dir,omitempty"`
	ConfigMap string      `json:"config_map,omitempty"`
	Secret    string      `json:"secret,omitempty"`
	Items     []KeyToPath `json:"items,omitempty"`
}

// ReadTopology reads the examples of the repository at root.
func ReadTopology(root string) (*Topology, error) {
	c, err := LoadCompose(root)
	if err != nil {
		return nil, err
	}
	built, unnamed := c.BuiltImages()
	if len(unnamed) > 0 {
		return nil, fmt.Errorf("compose services %s build an image but name none with a tag", strings.Join(unnamed, ", "))
	}
	t := &Topology{Images: map[string]BuiltImage{}}
	for repo, b := range built {
		d, err := ParseDockerfile(b.Dockerfile)
		if err != nil {
			return nil, err
		}
		argv, sh := d.Entrypoint()
		if sh {
			argv = append([]string{"/bin/sh", "-c"}, argv...)
		}
		t.Images[repo] = BuiltImage{Files: d.ImageFiles(b.Context), Env: d.ImageEnv(), Entrypoint: argv}
	}
	if t.Compose, err = composeTopology(c, t.Images); err != nil {
		return nil, err
	}
	k, err := LoadKube(root)
	if err != nil {
		return nil, err
	}
	if t.Kubernetes, err = kubeTopology(k); err != nil {
		return nil, err
	}
	return t, nil
}

func composeTopology(c *Compose, images map[string]BuiltImage) (ComposeTopology, error) {
	out := ComposeTopology{
		Volumes:  slices.Sorted(maps.Keys(c.Project.Volumes)),
		Services: map[string]Service{},
	}
	for _, name := range c.ServiceNames() {
		s := c.Project.Services[name]
		im, err := ParseImage(s.Image)
		if err != nil {
			return out, fmt.Errorf("compose service %s: %w", name, err)
		}
		env := maps.Clone(images[im.Repo].Env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, Environment(s))
		out.Services[name] = Service{
			Image:       im.Repo,
			Entrypoint:  s.Entrypoint,
			Command:     s.Command,
			WorkingDir:  s.WorkingDir,
			Environment: env,
			Mounts:      Mounts(s),
		}
	}
	return out, nil
}

func kubeTopology(k *Kube) (KubeTopology, error) {
	out := KubeTopology{
		ConfigMaps:       map[string]map[string]string{},
		GeneratedSecrets: slices.Sorted(maps.Keys(k.Generated()["Secret"])),
		Deployments:      map[string]Pod{},
	}
	for name, cm := range k.ConfigMaps {
		out.ConfigMaps[name] = cm.Data
	}
	for name, dep := range k.Deployments {
		pod, err := podTopology(k, dep.Pod())
		if err != nil {
			return out, fmt.Errorf("Deployment %s: %w", name, err)
		}
		out.Deployments[name] = pod
	}
	return out, nil
}

func podTopology(k *Kube, spec PodSpec) (Pod, error) {
	var pod Pod
	for _, c := range spec.AllContainers() {
		env, err := k.Env(c)
		if err != nil {
			return pod, err
		}
		im, err := ParseImage(c.Image)
		if err != nil {
			return pod, fmt.Errorf("container %s: %w", c.Name, err)
		}
		pod.Containers = append(pod.Containers, PodContainer{
			Name: c.Name, Init: c.Init, Image: im.Repo,
			Command: c.Command, Args: c.Args, Env: env, Mounts: c.VolumeMounts,
		})
	}
	for _, v := range spec.Volumes {
		pv := PodVolume{Name: v.Name, EmptyDir: v.EmptyDir != nil}
		switch {
		case v.ConfigMap != nil:
			pv.ConfigMap, pv.Items = v.ConfigMap.Name, v.ConfigMap.Items
		case v.Secret != nil:
			pv.Secret, pv.Items = v.Secret.SecretName, v.Secret.Items
		}
		pod.Volumes = append(pod.Volumes, pv)
	}
	return pod, nil
}
