package devserver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOneServerPerDBFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "temporal.db")
	first, err := lockDB(db)
	require.NoError(t, err)
	_, err = lockDB(db)
	require.ErrorContains(t, err, "is in use by another embedded Temporal server")
	require.ErrorContains(t, err, "pass another --db")
	first.release()
	first.release() // idempotent
	again, err := lockDB(db)
	require.NoError(t, err, "a stopped server's file can be used again")
	again.release()
	none, err := lockDB("")
	require.NoError(t, err)
	none.release()
}
