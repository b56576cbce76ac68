package dedup

import "strconv"

// EventKey is the key an event is deduplicated on, and the one rule for it that the ingress
// and a quarantine replay share. id is the event's id; deliveryKey the key of its delivery
// when that is not the event id (a content-keyed source's digest of what is signed, see
// providers.ContentKeyed), else ""; part is the event's index among the parts of its
// delivery, ignored parts counted, and parts their number.
//
// Without a delivery key it is the event id. A delivery of one part is deduplicated on its
// key as a whole; each event of a delivery of several, on the key and its index
// ("key/part"), so that each is produced once and a resend of the delivery is a duplicate
// of each. A key other than the id goes with the event's record in KeyHeader.
func EventKey(deliveryKey, id string, part, parts int) string {
	switch {
	case deliveryKey == "":
		return id
	case parts <= 1:
		return deliveryKey
	}
	return deliveryKey + "/" + strconv.Itoa(part)
}
