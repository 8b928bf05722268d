// Command kingress-standin is a TEST-HARNESS-ONLY stand-in for Knative's
// networking layer (Kourier, Istio, Contour, ...). It is not part of Gaia.
//
// The local cluster (hack/cluster.sh) has no data plane: pods are KWOK fakes and
// no traffic is ever routed. Knative Serving still needs some networking layer
// to mark its KIngress objects (networking.internal.knative.dev/v1alpha1
// Ingress) Ready before a Route, and so a Service, becomes Ready. This program
// watches KIngresses of one ingress class and writes the status a real
// networking layer would write once it had programmed its proxies:
// conditions LoadBalancerReady, NetworkConfigured and Ready = True,
// observedGeneration, and public/private load balancer entries whose
// domainInternal names a (non-existent) in-cluster service. It programs nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const classAnnotation = "networking.knative.dev/ingress.class"

var ingressGVR = schema.GroupVersionResource{
	Group:    "networking.internal.knative.dev",
	Version:  "v1alpha1",
	Resource: "ingresses",
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "path to a kubeconfig")
	class := flag.String("ingress-class", "gaia-standin.ingress.networking.knative.dev",
		"reconcile only KIngresses with this networking.knative.dev/ingress.class annotation")
	domain := flag.String("lb-domain", "kingress-standin.knative-serving.svc.cluster.local",
		"domainInternal reported for the (fake) load balancers")
	workers := flag.Int("workers", 2, "number of reconcile workers")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	cfg.UserAgent = "gaia-kingress-standin"
	client := dynamic.NewForConfigOrDie(cfg)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 10*time.Minute)
	informer := factory.ForResource(ingressGVR).Informer()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj interface{}) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		log.Fatalf("add event handler: %v", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		log.Fatal("informer cache did not sync")
	}
	log.Printf("kingress-standin: reconciling KIngresses of class %q (TEST HARNESS ONLY, no data plane)", *class)

	r := &reconciler{client: client, indexer: informer.GetIndexer(), class: *class, domain: *domain}
	for i := 0; i < *workers; i++ {
		go func() {
			for {
				key, quit := queue.Get()
				if quit {
					return
				}
				if err := r.reconcile(ctx, key); err != nil {
					log.Printf("reconcile %s: %v (requeued)", key, err)
					queue.AddRateLimited(key)
				} else {
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}()
	}
	<-ctx.Done()
	queue.ShutDown()
	log.Print("kingress-standin: stopped")
}

type reconciler struct {
	client  dynamic.Interface
	indexer cache.Indexer
	class   string
	domain  string
}

func (r *reconciler) reconcile(ctx context.Context, key string) error {
	obj, exists, err := r.indexer.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	ing := obj.(*unstructured.Unstructured).DeepCopy()
	if ing.GetAnnotations()[classAnnotation] != r.class || ing.GetDeletionTimestamp() != nil {
		return nil
	}
	status, _, _ := unstructured.NestedMap(ing.Object, "status")
	if status == nil {
		status = map[string]interface{}{}
	}
	desired := r.desiredStatus(ing.GetGeneration(), status)
	if reflect.DeepEqual(status, desired) {
		return nil
	}
	ing.Object["status"] = desired
	_, err = r.client.Resource(ingressGVR).Namespace(ing.GetNamespace()).UpdateStatus(ctx, ing, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	log.Printf("kingress %s generation %d marked Ready", key, ing.GetGeneration())
	return nil
}

// desiredStatus returns the status a networking layer reports once it has
// programmed the ingress, keeping existing condition timestamps when unchanged.
func (r *reconciler) desiredStatus(generation int64, current map[string]interface{}) map[string]interface{} {
	now := time.Now().UTC().Format(time.RFC3339)
	old := map[string]map[string]interface{}{}
	if conds, ok := current["conditions"].([]interface{}); ok {
		for _, c := range conds {
			if m, ok := c.(map[string]interface{}); ok {
				if t, ok := m["type"].(string); ok {
					old[t] = m
				}
			}
		}
	}
	var conditions []interface{}
	for _, t := range []string{"LoadBalancerReady", "NetworkConfigured", "Ready"} {
		ts := now
		if o, ok := old[t]; ok && o["status"] == "True" {
			if prev, ok := o["lastTransitionTime"].(string); ok {
				ts = prev
			}
		}
		conditions = append(conditions, map[string]interface{}{
			"type":               t,
			"status":             "True",
			"lastTransitionTime": ts,
		})
	}
	lb := func() map[string]interface{} {
		return map[string]interface{}{
			"ingress": []interface{}{map[string]interface{}{"domainInternal": r.domain}},
		}
	}
	return map[string]interface{}{
		"observedGeneration":  generation,
		"conditions":          conditions,
		"publicLoadBalancer":  lb(),
		"privateLoadBalancer": lb(),
	}
}
