// Package admission holds the envtest tests of kpo's admission policies in config/policies.
package admission
