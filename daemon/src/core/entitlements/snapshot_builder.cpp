// Snapshot validation: walks the neutral tree, fills the model, names every bad path.
#include "core/entitlements/snapshot_builder.hpp"

#include <charconv>
#include <initializer_list>

#include "core/entitlements/check_request.hpp"

namespace aforo::core::entitlements {

namespace {

constexpr std::size_t max_customer_id = 64;
constexpr std::size_t max_name = 255;

class builder {
 public:
  std::vector<std::string> errors;

  void fail(const std::string& path, std::string_view message) {
    std::string e = path.empty() ? std::string("(root)") : path;
    e += ": ";
    e += message;
    errors.push_back(std::move(e));
  }

  static std::string join(const std::string& path, std::string_view key) {
    if (path.empty()) return std::string(key);
    std::string p = path;
    p += '.';
    p += key;
    return p;
  }
  static std::string index(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

  // Rejects keys outside `allowed`; false when the node is not a map.
  bool check_map(const doc_node& n, const std::string& path, std::initializer_list<std::string_view> allowed) {
    if (!n.is_map()) {
      fail(path, "must be a map");
      return false;
    }
    for (const auto& k : n.keys) {
      bool known = false;
      for (auto a : allowed) known = known || k == a;
      if (!known) fail(join(path, k), "unknown key");
    }
    for (std::size_t i = 0; i < n.keys.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (n.keys[i] == n.keys[j]) fail(join(path, n.keys[i]), "duplicate key");
      }
    }
    return true;
  }

  // A scalar string; `required` reports absence.
  std::optional<std::string> text(const doc_node* n, const std::string& path, bool required) {
    if (n == nullptr || n->is_null()) {
      if (required) fail(path, "is required");
      return std::nullopt;
    }
    if (!n->is_scalar()) {
      fail(path, "must be a string");
      return std::nullopt;
    }
    return n->text;
  }

  static bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > max_name) return false;
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-' || c == '.';
      if (!ok) return false;
    }
    return true;
  }

  std::optional<std::string> name(const doc_node* n, const std::string& path, bool required) {
    auto s = text(n, path, required);
    if (s && !valid_name(*s)) {
      fail(path, "must be 1..255 characters of A-Z a-z 0-9 _ . -");
      return std::nullopt;
    }
    return s;
  }

  std::optional<period_kind> period(const doc_node* n, const std::string& path) {
    auto s = text(n, path, false);
    if (!s) return std::nullopt;
    auto p = parse_period_kind(*s);
    if (!p) fail(path, "must be one of hour, day, month");
    return p;
  }

  std::optional<micros> money(const doc_node* n, const std::string& path, bool required) {
    auto s = text(n, path, required);
    if (!s) return std::nullopt;
    auto r = parse_micros(*s);
    if (r.error != nullptr) {
      fail(path, r.error);
      return std::nullopt;
    }
    return r.value;
  }

  void feature_entry(const doc_node& n, const std::string& path, feature_entitlement& out) {
    if (n.is_null()) return;  // `basic_search:` with no value = unlimited
    if (!check_map(n, path, {"limit", "period"})) return;
    if (const doc_node* lim = n.find("limit"); lim != nullptr && !lim->is_null()) {
      const std::string lpath = join(path, "limit");
      std::int64_t v = -1;
      if (lim->is_scalar()) {
        const char* b = lim->text.data();
        const char* e = b + lim->text.size();
        auto [ptr, ec] = std::from_chars(b, e, v);
        if (ec != std::errc{} || ptr != e) v = -1;
      }
      if (v < 0) {
        fail(lpath, "must be an integer >= 0 (omit it for unlimited)");
      } else {
        out.limit = v;
      }
    }
    if (auto p = period(n.find("period"), join(path, "period"))) out.period = *p;
  }

  void customer_entry(const std::string& id, const doc_node& n, const std::string& path, customer& out) {
    out.id = id;
    if (id.empty() || id.size() > max_customer_id) fail(path, "customer id must be 1..64 characters");
    if (!check_map(n, path, {"plan", "status", "grace_until", "features", "revenue"})) return;
    if (auto plan = text(n.find("plan"), join(path, "plan"), true)) out.plan = *plan;
    if (auto st = text(n.find("status"), join(path, "status"), true)) {
      if (auto s = parse_customer_status(*st)) {
        out.status = *s;
      } else {
        fail(join(path, "status"), "must be one of active, trialing, past_due, suspended, cancelled");
      }
    }
    if (auto g = text(n.find("grace_until"), join(path, "grace_until"), false)) {
      if (auto t = parse_iso8601(*g)) {
        out.grace_until = *t;
      } else {
        fail(join(path, "grace_until"), "must be an ISO-8601 UTC time like 2026-12-01T00:00:00Z");
      }
    }
    if (const doc_node* f = n.find("features"); f != nullptr && !f->is_null()) {
      const std::string fpath = join(path, "features");
      if (!f->is_map()) {
        fail(fpath, "must be a map");
      } else {
        for (std::size_t i = 0; i < f->keys.size(); ++i) {
          const std::string& fname = f->keys[i];
          const std::string epath = join(fpath, fname);
          if (!valid_name(fname)) fail(epath, "feature name must be 1..255 characters of A-Z a-z 0-9 _ . -");
          feature_entitlement fe;
          feature_entry(f->children[i], epath, fe);
          out.features.emplace(fname, fe);
        }
      }
    }
    if (const doc_node* r = n.find("revenue"); r != nullptr && !r->is_null()) {
      const std::string rpath = join(path, "revenue");
      if (check_map(*r, rpath, {"amount", "period"})) {
        revenue_terms rev;
        if (auto a = money(r->find("amount"), join(rpath, "amount"), true)) rev.amount = *a;
        if (auto p = period(r->find("period"), join(rpath, "period"))) rev.period = *p;
        out.revenue = rev;
      }
    }
  }

  void methods(const doc_node& n, const std::string& path, std::vector<std::string>& out) {
    if (!n.is_seq()) {
      fail(path, "must be a list");
      return;
    }
    for (std::size_t i = 0; i < n.children.size(); ++i) {
      auto m = text(&n.children[i], index(path, i), true);
      if (!m) continue;
      bool ok = !m->empty() && m->size() <= 16;
      for (char& c : *m) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        ok = ok && c >= 'A' && c <= 'Z';
      }
      if (!ok) {
        fail(index(path, i), "must be an HTTP method such as GET");
      } else {
        out.push_back(std::move(*m));
      }
    }
  }

  void rule_entry(const doc_node& n, const std::string& path, feature_rule& out) {
    if (!check_map(n, path, {"feature", "match", "metric", "unit_cost"})) return;
    if (auto f = name(n.find("feature"), join(path, "feature"), true)) out.feature = *f;
    if (auto m = text(n.find("metric"), join(path, "metric"), false)) {
      if (m->empty() || m->size() > max_name) {
        fail(join(path, "metric"), "must be 1..255 characters");
      } else {
        out.metric = *m;
      }
    }
    if (auto c = money(n.find("unit_cost"), join(path, "unit_cost"), false)) out.unit_cost = *c;
    const doc_node* match = n.find("match");
    if (match == nullptr || match->is_null()) return;
    const std::string mpath = join(path, "match");
    if (!check_map(*match, mpath, {"service", "route", "methods", "path_prefix", "operation"})) return;
    if (auto s = text(match->find("service"), join(mpath, "service"), false)) out.match.service = *s;
    if (auto r = text(match->find("route"), join(mpath, "route"), false)) out.match.route = *r;
    if (const doc_node* ms = match->find("methods"); ms != nullptr && !ms->is_null()) {
      methods(*ms, join(mpath, "methods"), out.match.methods);
    }
    if (auto p = text(match->find("path_prefix"), join(mpath, "path_prefix"), false)) {
      if (p->empty() || (*p)[0] != '/') {
        fail(join(mpath, "path_prefix"), "must start with /");
      } else {
        out.match.path_prefix = *p;
      }
    }
    if (auto o = text(match->find("operation"), join(mpath, "operation"), false)) {
      if (o->empty() || o->size() > max_operation_len) {
        fail(join(mpath, "operation"), "must be 1.." + std::to_string(max_operation_len) + " characters");
      } else {
        out.match.operation = *o;
      }
    }
  }

  void root(const doc_node& n, snapshot& out) {
    if (!check_map(n, "", {"version", "customers", "features"})) return;
    if (auto v = text(n.find("version"), "version", true)) {
      if (v->empty()) {
        fail("version", "must not be empty");
      } else {
        out.version = *v;
      }
    }
    const doc_node* cs = n.find("customers");
    if (cs == nullptr || cs->is_null()) {
      fail("customers", "is required");
    } else if (!cs->is_map()) {
      fail("customers", "must be a map");
    } else {
      out.customers.reserve(cs->keys.size());
      for (std::size_t i = 0; i < cs->keys.size(); ++i) {
        customer c;
        customer_entry(cs->keys[i], cs->children[i], join("customers", cs->keys[i]), c);
        if (!out.customers.emplace(cs->keys[i], std::move(c)).second) {
          fail(join("customers", cs->keys[i]), "duplicate customer id");
        }
      }
    }
    if (const doc_node* fs = n.find("features"); fs != nullptr && !fs->is_null()) {
      if (!fs->is_seq()) {
        fail("features", "must be a list");
      } else {
        out.rules.reserve(fs->children.size());
        for (std::size_t i = 0; i < fs->children.size(); ++i) {
          feature_rule r;
          rule_entry(fs->children[i], index("features", i), r);
          out.rules.push_back(std::move(r));
        }
      }
    }
  }
};

}  // namespace

snapshot_result build_snapshot(const doc_node& root) {
  builder b;
  snapshot s;
  b.root(root, s);
  snapshot_result r;
  if (b.errors.empty()) {
    r.value = std::move(s);
  } else {
    r.errors = std::move(b.errors);
  }
  return r;
}

}  // namespace aforo::core::entitlements
