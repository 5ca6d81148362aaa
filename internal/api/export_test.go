package api_test

import (
	"net/http/httptest"

	"github.com/tradewind/tradewind/internal/api"
)

type apiConfig = api.Config

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
