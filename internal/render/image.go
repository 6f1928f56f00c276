package render

import "strings"

// ImageName returns the name a function image is known by, without registry, repository
// path, tag or digest: gcr.io/kpt-fn/set-namespace:v0.4.1 and
// ghcr.io/kptdev/krm-functions-catalog/set-namespace:latest both give set-namespace. Built-in
// and exec evaluators are keyed by it.
func ImageName(image string) string {
	image = strings.TrimSpace(image)
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	return image
}
