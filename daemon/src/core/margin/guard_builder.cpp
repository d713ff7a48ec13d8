// Guard file -> model; see guard_builder.hpp.
#include "core/margin/guard_builder.hpp"

#include <initializer_list>

namespace aforo::core::margin {

namespace {

using entitlements::doc_node;

class builder {
 public:
  std::vector<std::string> errors;

  void fail(const std::string& path, std::string_view message) {
    errors.push_back((path.empty() ? std::string("(root)") : path) + ": " + std::string(message));
  }

  bool check_map(const doc_node& n, const std::string& path, std::initializer_list<std::string_view> allowed) {
    if (!n.is_map()) {
      fail(path, "must be a map");
      return false;
    }
    for (const auto& k : n.keys) {
      bool known = false;
      for (auto a : allowed) known = known || a == k;
      if (!known) {
        std::string msg = "unknown key '" + k + "' (expected one of:";
        for (auto a : allowed) {
          msg += ' ';
          msg += a;
        }
        msg += ')';
        fail(path.empty() ? k : path + "." + k, msg);
      }
    }
    return true;
  }

  std::optional<std::string> scalar(const doc_node& n, const std::string& path) {
    if (!n.is_scalar() || n.text.empty()) {
      fail(path, "must be a non-empty string");
      return std::nullopt;
    }
    return n.text;
  }

  std::optional<std::int32_t> percent(const doc_node& n, const std::string& path) {
    if (n.is_scalar()) {
      if (auto bp = parse_percent_bp(n.text)) return bp;
    }
    fail(path, "must be a percentage from 0% to 100% such as 30% (at most 2 decimals)");
    return std::nullopt;
  }

  std::vector<std::string> string_list(const doc_node& n, const std::string& path) {
    std::vector<std::string> out;
    if (n.is_scalar() && !n.text.empty()) {  // a single value is a list of one
      out.push_back(n.text);
      return out;
    }
    if (!n.is_seq()) {
      fail(path, "must be a list of strings");
      return out;
    }
    for (std::size_t i = 0; i < n.children.size(); ++i) {
      if (auto s = scalar(n.children[i], path + "[" + std::to_string(i) + "]")) out.push_back(*s);
    }
    return out;
  }

  // The threshold of a level: required.
  std::int32_t threshold(const doc_node& level, const std::string& path) {
    const doc_node* t = level.find("threshold");
    if (t == nullptr || t->is_null()) {
      fail(path + ".threshold", "is required (a percentage such as 30%)");
      return 0;
    }
    return percent(*t, path + ".threshold").value_or(0);
  }

  guard build_guard(const doc_node& n, const std::string& path) {
    guard g;
    if (!check_map(n, path, {"id", "applies_to", "min_margin", "level_1", "level_2", "level_3", "mode"})) return g;
    if (const doc_node* id = n.find("id")) {
      if (auto s = scalar(*id, path + ".id")) g.id = *s;
    } else {
      fail(path + ".id", "is required (a non-empty string)");
    }
    if (const doc_node* a = n.find("applies_to"); a != nullptr && !a->is_null()) {
      const std::string ap = path + ".applies_to";
      if (check_map(*a, ap, {"plans", "customers", "features"})) {
        if (const doc_node* x = a->find("plans")) g.applies_to.plans = string_list(*x, ap + ".plans");
        if (const doc_node* x = a->find("customers")) g.applies_to.customers = string_list(*x, ap + ".customers");
        if (const doc_node* x = a->find("features")) g.applies_to.features = string_list(*x, ap + ".features");
      }
    }
    if (const doc_node* m = n.find("min_margin"); m != nullptr && !m->is_null()) {
      g.min_margin_bp = percent(*m, path + ".min_margin");
    }
    if (const doc_node* m = n.find("mode"); m != nullptr && !m->is_null()) {
      auto mode = m->is_scalar() ? parse_guard_mode(m->text) : std::nullopt;
      if (mode) {
        g.mode = *mode;
      } else {
        fail(path + ".mode", "must be one of enforce, alert_only, shadow");
      }
    }
    if (const doc_node* l = n.find("level_1"); l != nullptr && !l->is_null()) {
      const std::string lp = path + ".level_1";
      if (check_map(*l, lp, {"threshold", "notify"})) {
        level_1_config c;
        c.threshold_bp = threshold(*l, lp);
        if (const doc_node* x = l->find("notify"); x != nullptr && !x->is_null())
          c.notify = string_list(*x, lp + ".notify");
        g.level_1 = std::move(c);
      }
    }
    if (const doc_node* l = n.find("level_2"); l != nullptr && !l->is_null()) {
      const std::string lp = path + ".level_2";
      if (check_map(*l, lp, {"threshold", "throttle_rate"})) {
        level_2_config c;
        c.threshold_bp = threshold(*l, lp);
        const doc_node* r = l->find("throttle_rate");
        if (r == nullptr || r->is_null()) {
          fail(lp + ".throttle_rate", "is required (a rate such as 5/s)");
        } else if (auto parsed = r->is_scalar() ? parse_rate(r->text) : std::nullopt) {
          c.throttle_rate = *parsed;
        } else {
          fail(lp + ".throttle_rate", "must be a rate such as 5/s (a positive count per s, m or h)");
        }
        g.level_2 = c;
      }
    }
    if (const doc_node* l = n.find("level_3"); l != nullptr && !l->is_null()) {
      const std::string lp = path + ".level_3";
      if (check_map(*l, lp, {"threshold", "retry_after"})) {
        level_3_config c;
        c.threshold_bp = threshold(*l, lp);
        if (const doc_node* r = l->find("retry_after"); r != nullptr && !r->is_null()) {
          auto s = r->is_scalar() ? parse_seconds(r->text) : std::nullopt;
          if (s && *s > 0) {
            c.retry_after_s = *s;
          } else {
            fail(lp + ".retry_after", "must be a positive duration such as 1800s, 30m or 1h");
          }
        }
        g.level_3 = c;
      }
    }
    return g;
  }
};

}  // namespace

guard_set_result build_guard_set(const doc_node& root) {
  builder b;
  guard_set set;
  if (root.is_null()) {
    b.fail("guards", "is required (the guard file is empty; `guards: []` means no guard)");
  } else if (b.check_map(root, "", {"guards"})) {
    const doc_node* guards = root.find("guards");
    if (guards == nullptr) {
      b.fail("guards", "is required (a list of guards; [] for none)");
    } else if (guards->is_null()) {
      // `guards:` with nothing under it: no guard.
    } else if (!guards->is_seq()) {
      b.fail("guards", "must be a list of guards");
    } else {
      for (std::size_t i = 0; i < guards->children.size(); ++i) {
        set.guards.push_back(b.build_guard(guards->children[i], "guards[" + std::to_string(i) + "]"));
      }
    }
  }
  guard_set_result r;
  if (b.errors.empty()) {
    // Semantic checks only on a well-formed model (a failed field would report twice otherwise).
    r.errors = validate_guards(set);
  } else {
    r.errors = std::move(b.errors);
  }
  if (r.errors.empty()) r.value = std::move(set);
  return r;
}

}  // namespace aforo::core::margin
