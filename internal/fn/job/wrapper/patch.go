package wrapper

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func jsonMergePatch(cm *corev1.ConfigMap) ([]byte, error) {
	return json.Marshal(map[string]any{"binaryData": cm.BinaryData})
}

func metav1PatchOptions() metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: "kpo-fn-wrapper"}
}
