// Package e2e holds the end-to-end tests of moat: the real binary against
// real VMs under QEMU (see e2e_test.go; Linux only for now).
package e2e
