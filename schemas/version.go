package schemas

// Version is the version of the message contract as a whole (every schema
// file here), in semver. The browser client package (@tradewind/client,
// web/client/package.json) carries the same version, since its types are
// generated from these files; web/typesgen's test keeps the two equal.
//
// Bump it in the same change as any schema: the minor for a new type or
// version of a type, or a new optional field (old versions stay accepted,
// so the contract only grows); the patch for a client-only release. Then
// record the new digest in version_test.go, whose test fails, printing it,
// whenever the schemas differ from the ones recorded for Version.
const Version = "1.0.0"
