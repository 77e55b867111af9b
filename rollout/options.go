package rollout

import "sigs.k8s.io/controller-runtime/pkg/controller"

func controllerOptions(concurrency int) controller.Options {
	return controller.Options{MaxConcurrentReconciles: max(concurrency, 1)}
}
