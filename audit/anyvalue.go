package audit

import (
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// stringValue unpacks a logged filter state object holding a string.
func stringValue(a *anypb.Any) string {
	var s wrapperspb.StringValue
	if a.UnmarshalTo(&s) != nil {
		return ""
	}
	return s.GetValue()
}
