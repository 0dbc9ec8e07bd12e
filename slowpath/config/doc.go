// Package config turns an ipfront TOML file into a validated, deterministic
// Spec.
//
// A Spec is what the operator asked for, never what the machine has: nothing
// in it depends on the running kernel, the NICs present or DNS. Parsing the
// same bytes always yields the same Spec or the same errors, so `ipfront
// check` on a laptop says what the daemon will accept on the load balancer.
// The live objects built from a Spec (sockets, maps, workers) belong to other
// packages.
//
// Parse works in three steps:
//
//  1. go-toml decodes the document into generic values; a TOML syntax error
//     stops here, as the rest of the file cannot be read reliably.
//  2. A walk of the document with go-toml's unstable parser indexes where
//     each key path (such as "target_set[1].server[3].address") is written.
//  3. The generic values are decoded into a Spec and validated, collecting
//     every problem (unknown keys, wrong types, bad values, conflicts between
//     target sets) with the position of the offending key or value.
//
// Problems come back as an Errors list whose lines read
//
//	file:line:column: message (hint: how to fix it)
//
// Problems that leave the configuration valid but probably defeat its purpose
// (a persistence group member without a server another member has) come back
// as Spec.Warnings in the same format, with "warning: " before the message.
//
// Struct decoding (with DisallowUnknownFields) is not used because go-toml
// stops at the first type mismatch, which would hide the remaining errors.
package config
