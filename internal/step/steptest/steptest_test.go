package steptest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func TestResultOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want swu.Result
	}{
		{"nil is success", nil, swu.ResultSuccess},
		{"step error", &step.Error{Result: swu.ResultValidation}, swu.ResultValidation},
		{"wrapped step error", fmt.Errorf("fetch: %w", &step.Error{Result: swu.ResultNoFlash}), swu.ResultNoFlash},
		{"other error", errors.New("boom"), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResultOf(tt.err); got != tt.want {
				t.Errorf("ResultOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
