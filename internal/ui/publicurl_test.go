package ui

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestPublicOrigin_isTheOriginBrowsersSend: the public URL of the in-cluster UI is compared
// with the Host and Origin headers browsers send, which never carry a scheme's default port;
// a path, a query or credentials in it are refused (the UI is served from /).
func TestPublicOrigin_isTheOriginBrowsersSend(t *testing.T) {
	for raw, want := range map[string]string{
		"https://kpo.example.com":       "https://kpo.example.com",
		"https://kpo.example.com/":      "https://kpo.example.com",
		"https://KPO.example.com:443":   "https://kpo.example.com",
		"http://kpo.example.com:80/":    "http://kpo.example.com",
		"https://kpo.example.com:8443":  "https://kpo.example.com:8443",
		"http://10.88.0.5:8080":         "http://10.88.0.5:8080",
		"https://[2001:db8::1]:443":     "https://[2001:db8::1]",
		"http://kpo-ui.node.test:8080/": "http://kpo-ui.node.test:8080",
	} {
		g := NewWithT(t)
		u, err := publicOrigin(raw)
		g.Expect(err).NotTo(HaveOccurred(), raw)
		g.Expect(u.String()).To(Equal(want), raw)
	}
	for _, raw := range []string{"", "kpo.example.com", "ftp://kpo.example.com", "https://", "https://kpo.example.com/kpo/",
		"https://user:pw@kpo.example.com", "https://kpo.example.com/?a=b", "https://kpo.example.com/#x"} {
		_, err := publicOrigin(raw)
		NewWithT(t).Expect(err).To(HaveOccurred(), raw)
	}
}
