package render

import "kpo.dev/kpo/internal/fn/builtin"

// ImageName returns the name a function image is known by, without registry, repository
// path, tag or digest: gcr.io/kpt-fn/set-namespace:v0.4.1 and
// ghcr.io/kptdev/krm-functions-catalog/set-namespace:latest both give set-namespace. Built-in
// and exec evaluators are keyed by it (the rule is the built-ins' own).
func ImageName(image string) string { return builtin.ImageName(image) }
