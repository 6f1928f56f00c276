package admission_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	admv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"kpo.dev/kpo/internal/testenv"
)

func TestProbe(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	if err := testenv.InstallConfig(context.Background(), env.Config); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	c, _ := client.New(env.Config, client.Options{})
	var l admv1.ValidatingAdmissionPolicyList
	if err := c.List(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		fmt.Printf("%s %+v\n", p.Name, p.Status)
	}
}
