package bulwarkhttp_test

import (
	"testing"
	"testing/synctest"
)

func bulwarktestSynctest(t *testing.T, f func(t *testing.T)) { synctest.Test(t, f) }
