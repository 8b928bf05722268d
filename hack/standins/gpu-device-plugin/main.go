// gpu-device-plugin: the test harness's GPU stand-in on a real node. NOT an NVIDIA driver.
//
// A GPU is the one thing the local cluster cannot have. This Kubernetes device plugin
// advertises N fake devices of an extended resource (nvidia.com/gpu by default) on the
// GPU-pool worker the way NVIDIA's device plugin does, so the kubelet's device manager
// accounts for them exactly as on a GPU node: capacity and allocatable come from the plugin,
// a pod that asks for more than is free is not admitted, and each allocated container gets
// the environment a GPU container would (NVIDIA_VISIBLE_DEVICES) plus GAIA_GPU_STANDIN=PROFILE,
// which tells Gaia's function server to answer with the calibrated GPU profile's latency
// instead of computing (hack/images/runtime/function_server.py).
//
// Registration goes through the kubelet's plugin watcher (<kubelet root-dir>/plugins_registry),
// not the fixed /var/lib/kubelet/device-plugins/kubelet.sock: several kubelets run on this one
// machine, each with its own root directory, and only the watcher's directory is per kubelet.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	dp "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	reg "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type plugin struct {
	dp.UnimplementedDevicePluginServer
	reg.UnimplementedRegistrationServer
	resource string
	socket   string
	profile  string
	devices  []*dp.Device
	stop     chan struct{}
}

// GetInfo: the kubelet's plugin watcher asks who we are; the endpoint is this same socket.
func (p *plugin) GetInfo(context.Context, *reg.InfoRequest) (*reg.PluginInfo, error) {
	return &reg.PluginInfo{Type: reg.DevicePlugin, Name: p.resource, Endpoint: p.socket,
		SupportedVersions: []string{dp.Version}}, nil
}

func (p *plugin) NotifyRegistrationStatus(_ context.Context, s *reg.RegistrationStatus) (*reg.RegistrationStatusResponse, error) {
	if s.PluginRegistered {
		log.Printf("registered with the kubelet as %s (%d devices)", p.resource, len(p.devices))
	} else {
		log.Printf("the kubelet refused the registration: %s", s.Error)
	}
	return &reg.RegistrationStatusResponse{}, nil
}

func (p *plugin) GetDevicePluginOptions(context.Context, *dp.Empty) (*dp.DevicePluginOptions, error) {
	return &dp.DevicePluginOptions{}, nil
}

// ListAndWatch: the devices once (they never fail: there is no hardware to fail), then wait.
func (p *plugin) ListAndWatch(_ *dp.Empty, s grpc.ServerStreamingServer[dp.ListAndWatchResponse]) error {
	if err := s.Send(&dp.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	select {
	case <-s.Context().Done():
	case <-p.stop:
	}
	return nil
}

// Allocate: what NVIDIA's plugin gives a container (the device IDs it may see), and the
// stand-in's marker.
func (p *plugin) Allocate(_ context.Context, r *dp.AllocateRequest) (*dp.AllocateResponse, error) {
	out := &dp.AllocateResponse{}
	for _, c := range r.ContainerRequests {
		out.ContainerResponses = append(out.ContainerResponses, &dp.ContainerAllocateResponse{
			Envs: map[string]string{
				"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ","),
				"GAIA_GPU_STANDIN":       p.profile,
			},
			Annotations: map[string]string{"gaia.dev/gpu-standin": p.profile},
		})
		log.Printf("allocated %v", c.DevicesIds)
	}
	return out, nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *dp.PreferredAllocationRequest) (*dp.PreferredAllocationResponse, error) {
	return &dp.PreferredAllocationResponse{}, nil
}

func (p *plugin) PreStartContainer(context.Context, *dp.PreStartContainerRequest) (*dp.PreStartContainerResponse, error) {
	return &dp.PreStartContainerResponse{}, nil
}

func main() {
	registry := flag.String("registry-dir", "", "the kubelet's plugin watcher directory (<root-dir>/plugins_registry)")
	resource := flag.String("resource", "nvidia.com/gpu", "the extended resource to advertise")
	count := flag.Int("devices", 1, "how many devices to advertise")
	node := flag.String("node", "node", "node name, part of the device IDs")
	profile := flag.String("profile", "h100", "calibration profile the function server answers with (GAIA_GPU_STANDIN)")
	flag.Parse()
	if *registry == "" || *count < 1 {
		log.Fatal("gpu-device-plugin: --registry-dir is required and --devices must be at least 1")
	}
	// one plugin per resource; the name stays short: a unix socket path has at most 107 bytes
	name := strings.NewReplacer("nvidia.com/", "", "/", "-", ".", "-").Replace(*resource)
	p := &plugin{resource: *resource, profile: *profile, stop: make(chan struct{}),
		socket: filepath.Join(*registry, "standin-"+name+".sock")}
	if len(p.socket) > 107 {
		log.Fatalf("gpu-device-plugin: socket path %s is %d bytes, over the 107 a unix socket allows: use a shorter state directory", p.socket, len(p.socket))
	}
	for i := 0; i < *count; i++ {
		p.devices = append(p.devices, &dp.Device{ID: fmt.Sprintf("GPU-standin-%s-%d", *node, i), Health: dp.Healthy})
	}
	if err := os.MkdirAll(*registry, 0o750); err != nil {
		log.Fatal(err)
	}
	_ = os.Remove(p.socket)
	lis, err := net.Listen("unix", p.socket)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	dp.RegisterDevicePluginServer(srv, p)
	reg.RegisterRegistrationServer(srv, p)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		close(p.stop)
		srv.Stop()
	}()
	log.Printf("GPU stand-in device plugin: %d x %s on %s, profile %s, socket %s", *count, *resource, *node, *profile, p.socket)
	if err := srv.Serve(lis); err != nil {
		log.Print(err)
	}
	_ = os.Remove(p.socket)
}
