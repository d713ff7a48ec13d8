// Endpoint path templating for the API catalog: ids, UUIDs, hashes and tokens folded to {id},
// literal words kept, a Kong route's own path pattern preferred when the request went through it.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace aforo::core::discovery {

/// The placeholder a variable segment becomes.
inline constexpr std::string_view id_placeholder = "{id}";

/// Whether one path segment (no '/') is a value rather than a name. Variable:
/// - digits only (`42`, `0012`);
/// - a UUID (8-4-4-4-12 hex, any case);
/// - 16 or more hex digits (`5f2b...`, git SHAs, MD5/SHA hashes);
/// - an e-mail address (`a@b.co`, also percent-encoded `%40`);
/// - a token of 8+ characters from [A-Za-z0-9_-] with at least one letter and at least 2 digits,
///   unless it is a version word (`v1`, `v2beta1`, `v1alpha1`): Twilio's `AC` + 32 hex, Slack's
///   `C024BE91L`, base64url tokens; or of 10+ such characters with a digit and mixed case (at least
///   2 upper and 2 lower case letters): Stripe's `cus_NffrFeUfNV2Hib`;
/// - anything longer than 64 characters.
/// Literal: words, slugs and version words (`users`, `hello-world`, `v2`, `oauth2`), ISO dates used
/// as API versions (`2010-04-01`). A `stem.ext` segment (ext 1-5 letters) is judged on its stem.
/// Pure; thread-safe.
[[nodiscard]] bool is_variable_segment(std::string_view segment);

/// The request path with its query and fragment removed, duplicate and trailing slashes dropped
/// (the root stays "/"), and every variable segment replaced by {id} (`{id}.json` keeps the
/// extension). Pure; thread-safe.
[[nodiscard]] std::string template_path(std::string_view request_path);

/// The template of a request that went through a Kong route with these `paths`: the longest route
/// path the request matches (Kong prefix semantics: plain paths match as string prefixes; regex
/// paths starting with `~` match when the request starts with the regex's literal prefix, the part
/// before its first metacharacter) is the template, kept exactly as declared. A catch-all (`/`, or
/// a regex whose literal prefix is empty or `/`) is no pattern: nullopt, and the caller templates
/// the request path itself. Pure; thread-safe.
[[nodiscard]] std::optional<std::string> route_template(std::span<const std::string> route_paths,
                                                        std::string_view request_path);

/// Whether a route path is Kong's catch-all as far as templating goes (see route_template).
[[nodiscard]] bool is_catch_all_route_path(std::string_view route_path);

/// Whether `candidate` (a template) is covered by `pattern` (a template): same number of segments,
/// each equal or the pattern's one a placeholder (`{...}`). Used to fold new operations into
/// existing ones when a service is at its cardinality cap. Pure; thread-safe.
[[nodiscard]] bool template_covers(std::string_view pattern, std::string_view candidate);

}  // namespace aforo::core::discovery
