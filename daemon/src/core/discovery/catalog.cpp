// The API catalog; see catalog.hpp.
#include "core/discovery/catalog.hpp"

#include <algorithm>
#include <set>

#include "core/discovery/path_template.hpp"

namespace aforo::core::discovery {
namespace {

bool valid_method(std::string_view m) {
  if (m.empty() || m.size() > 16) return false;
  return std::all_of(m.begin(), m.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; });
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<std::string> sorted_unique(std::set<std::string> s) { return {s.begin(), s.end()}; }

}  // namespace

std::string_view to_string(entry_state s) {
  switch (s) {
    case entry_state::new_entry:
      return "NEW";
    case entry_state::changed:
      return "CHANGED";
    case entry_state::unchanged:
      return "UNCHANGED";
    case entry_state::stale:
      return "STALE";
  }
  return "UNCHANGED";
}

std::string_view to_string(operation_source s) {
  switch (s) {
    case operation_source::traffic:
      return "traffic";
    case operation_source::admin:
      return "admin";
    case operation_source::both:
      return "both";
  }
  return "traffic";
}

epoch_ms operation::last_activity_ms() const { return std::max({first_seen_ms, last_seen_ms, declared_changed_ms}); }

bool api::monetized() const { return contains(tags, monetized_tag); }
bool api::metered() const { return contains(plugins, "aforo-metering"); }

std::size_t catalog::operation_count() const {
  std::size_t n = 0;
  for (const auto& [_, a] : apis_) n += a.operations.size();
  return n;
}

entry_state catalog::state_of(const operation& op, epoch_ms now) const {
  const epoch_ms window = limits_.stale_after_ms;
  if (now - op.last_activity_ms() > window) return entry_state::stale;
  if (now - op.first_seen_ms <= window) return entry_state::new_entry;
  if (now - op.changed_ms <= window) return entry_state::changed;
  return entry_state::unchanged;
}

entry_state catalog::state_of(const api& a, epoch_ms now) const {
  const epoch_ms window = limits_.stale_after_ms;
  if (!a.operations.empty() && std::all_of(a.operations.begin(), a.operations.end(), [&](const auto& kv) {
        return state_of(kv.second, now) == entry_state::stale;
      }))
    return entry_state::stale;
  if (a.operations.empty() && !a.declared && now - a.first_seen_ms > window) return entry_state::stale;
  if (now - a.first_seen_ms <= window) return entry_state::new_entry;
  if (a.version > 1 && now - a.version_changed_ms <= window) return entry_state::changed;
  return entry_state::unchanged;
}

void catalog::rebuild_index() {
  service_ids_.clear();
  routes_.clear();
  for (const auto& [name, a] : apis_) {
    if (!a.service_id.empty()) service_ids_[a.service_id] = name;
    for (std::size_t i = 0; i < a.routes.size(); ++i) {
      if (!a.routes[i].id.empty()) routes_[a.routes[i].id] = {name, i};
      if (!a.routes[i].name.empty()) routes_[a.routes[i].name] = {name, i};
    }
  }
}

api* catalog::create_api(const std::string& name, epoch_ms now) {
  if (apis_.size() >= limits_.max_apis) return nullptr;
  api& a = apis_[name];
  a.name = name;
  a.first_seen_ms = now;
  ops_changed_[name] = true;
  unsaved_ = true;
  return &a;
}

api* catalog::find_api(const std::string& service, const std::string& route, const route_info** route_out) {
  *route_out = nullptr;
  api* found = nullptr;
  if (!service.empty()) {
    if (auto it = apis_.find(service); it != apis_.end())
      found = &it->second;
    else if (auto id = service_ids_.find(service); id != service_ids_.end())
      found = &apis_.at(id->second);
  }
  if (!route.empty()) {
    if (auto r = routes_.find(route); r != routes_.end()) {
      api& owner = apis_.at(r->second.first);
      if (found == nullptr || found == &owner) {
        found = &owner;
        *route_out = &owner.routes[r->second.second];
      }
    }
  }
  return found;
}

bool catalog::make_room(api& a, epoch_ms now) {
  if (a.operations.size() < limits_.max_operations_per_service) return true;
  // Evict the longest-idle STALE operation that the Admin API does not declare.
  auto victim = a.operations.end();
  for (auto it = a.operations.begin(); it != a.operations.end(); ++it) {
    if (it->second.declared || state_of(it->second, now) != entry_state::stale) continue;
    if (victim == a.operations.end() || it->second.last_activity_ms() < victim->second.last_activity_ms()) victim = it;
  }
  if (victim == a.operations.end()) return false;
  a.operations.erase(victim);
  ops_changed_[a.name] = true;
  return true;
}

observe_result catalog::observe(const traffic_observation& o, epoch_ms now) {
  const std::string method = upper(o.method);
  if (!valid_method(method) || o.path.empty() || o.path.front() != '/') return observe_result::ignored;
  if (o.service.empty() && o.route.empty()) return observe_result::ignored;

  const route_info* route = nullptr;
  api* a = find_api(o.service, o.route, &route);
  if (a == nullptr) {
    if (o.service.empty()) return observe_result::ignored;
    a = create_api(o.service, now);
    if (a == nullptr) return observe_result::dropped;
  }

  std::optional<std::string> from_route;
  if (o.exact) {
    from_route = o.path;
  } else if (route != nullptr) {
    from_route = route_template(route->paths, o.path);
  }
  if (!from_route && o.path != last_request_path_) {
    last_template_ = template_path(o.path);
    last_request_path_ = o.path;
  }
  const std::string& path = from_route ? *from_route : last_template_;

  unsaved_ = true;
  key_.first.assign(path);
  key_.second.assign(method);
  auto it = a->operations.find(key_);
  if (it == a->operations.end() && !o.exact) {  // a protocol operation is never the route's own
    key_.second.assign(any_method);
    auto any = a->operations.find(key_);
    if (any != a->operations.end() && any->second.declared) it = any;
  }
  if (it != a->operations.end()) {
    operation& op = it->second;
    if (op.count == 0 && op.declared) op.changed_ms = now;  // admin -> both
    ++op.count;
    op.last_seen_ms = now;
    return observe_result::counted;
  }

  if (a->operations.size() >= limits_.max_operations_per_service) {
    for (auto& [key, op] : a->operations) {
      if ((key.second == method || key.second == any_method) && template_covers(key.first, path)) {
        ++op.count;
        op.last_seen_ms = now;
        ++a->folded;
        return observe_result::folded;
      }
    }
    if (!make_room(*a, now)) {
      ++a->dropped;
      return observe_result::dropped;
    }
  }
  operation op;
  op.method = method;
  op.path = path;
  op.route = route != nullptr ? (route->name.empty() ? route->id : route->name) : o.route;
  op.first_seen_ms = now;
  op.last_seen_ms = now;
  op.count = 1;
  op.changed_ms = now;
  a->operations.emplace(std::make_pair(path, method), std::move(op));
  ops_changed_[a->name] = true;
  return observe_result::added;
}

std::uint64_t catalog::apply_admin(const kong_admin_state& state, epoch_ms now) {
  std::uint64_t dropped = 0;
  std::map<std::string, const kong_service*> by_id;
  for (const auto& s : state.services) by_id[s.id] = &s;

  std::set<std::string> listed;
  for (const auto& s : state.services) {
    const std::string& name = s.api_name();
    // Traffic that named the service by id before the first poll: merge it under the name.
    if (s.id != name) {
      if (auto by_id_api = apis_.find(s.id); by_id_api != apis_.end() && !by_id_api->second.declared) {
        api moved = std::move(by_id_api->second);
        apis_.erase(by_id_api);
        ops_changed_.erase(s.id);
        api* target = apis_.count(name) != 0 ? &apis_.at(name) : create_api(name, now);
        if (target != nullptr) {
          if (target->first_seen_ms > moved.first_seen_ms || target->first_seen_ms == 0)
            target->first_seen_ms = moved.first_seen_ms;
          for (auto& [key, op] : moved.operations) target->operations.emplace(key, std::move(op));
          ops_changed_[name] = true;
        }
      }
    }
    api* a = nullptr;
    if (auto it = apis_.find(name); it != apis_.end())
      a = &it->second;
    else
      a = create_api(name, now);
    if (a == nullptr) continue;
    listed.insert(name);

    std::set<std::string> hosts;
    std::set<std::string> plugins;
    std::set<std::string> route_ids;
    std::vector<route_info> routes;
    std::map<std::pair<std::string, std::string>, std::string> declared;  // (path, method) -> route label
    for (const auto& r : state.routes) {
      if (r.service_id != s.id) continue;
      route_ids.insert(r.id);
      hosts.insert(r.hosts.begin(), r.hosts.end());
      routes.push_back({r.id, r.name, r.paths, r.methods});
      for (const auto& p : r.paths) {
        if (is_catch_all_route_path(p)) continue;
        if (r.methods.empty()) declared.emplace(std::make_pair(p, std::string(any_method)), r.label());
        for (const auto& m : r.methods) declared.emplace(std::make_pair(p, m), r.label());
      }
    }
    for (const auto& p : state.plugins) {
      if (!p.enabled || !p.consumer_id.empty()) continue;
      const bool global = p.service_id.empty() && p.route_id.empty();
      if (global || p.service_id == s.id || route_ids.count(p.route_id) != 0) plugins.insert(p.name);
    }

    std::vector<std::string> host_list = sorted_unique(std::move(hosts));
    std::vector<std::string> plugin_list = sorted_unique(std::move(plugins));
    if (a->tags != s.tags || a->hosts != host_list || a->plugins != plugin_list || !a->declared ||
        a->service_id != s.id)
      meta_changed_ = true;
    a->service_id = s.id;
    a->declared = true;
    a->tags = s.tags;
    a->hosts = std::move(host_list);
    a->plugins = std::move(plugin_list);
    a->routes = std::move(routes);

    // Operations no longer declared: removed when never seen, else kept undeclared.
    for (auto it = a->operations.begin(); it != a->operations.end();) {
      operation& op = it->second;
      if (op.declared && declared.count(it->first) == 0) {
        if (op.count == 0) {
          it = a->operations.erase(it);
          ops_changed_[a->name] = true;
          continue;
        }
        op.declared = false;
        op.declared_changed_ms = now;
        op.changed_ms = now;
      }
      ++it;
    }
    for (const auto& [key, label] : declared) {
      auto it = a->operations.find(key);
      if (it != a->operations.end()) {
        if (!it->second.declared) {
          it->second.declared = true;
          it->second.declared_changed_ms = now;
          it->second.changed_ms = now;
          if (it->second.route.empty()) it->second.route = label;
        }
        continue;
      }
      if (!make_room(*a, now)) {
        ++a->dropped;
        ++dropped;
        continue;
      }
      operation op;
      op.method = key.second;
      op.path = key.first;
      op.route = label;
      op.first_seen_ms = now;
      op.declared = true;
      op.declared_changed_ms = now;
      op.changed_ms = now;
      a->operations.emplace(key, std::move(op));
      ops_changed_[a->name] = true;
    }
  }

  // Services the Admin API no longer lists.
  for (auto& [name, a] : apis_) {
    if (!a.declared || listed.count(name) != 0) continue;
    a.declared = false;
    a.routes.clear();
    meta_changed_ = true;
    for (auto it = a.operations.begin(); it != a.operations.end();) {
      if (!it->second.declared) {
        ++it;
        continue;
      }
      if (it->second.count == 0) {
        it = a.operations.erase(it);
        ops_changed_[name] = true;
        continue;
      }
      it->second.declared = false;
      it->second.declared_changed_ms = now;
      it->second.changed_ms = now;
      ++it;
    }
  }
  rebuild_index();
  unsaved_ = true;
  return dropped;
}

bool catalog::seal(epoch_ms now) {
  bool moved = meta_changed_;
  for (auto& [name, a] : apis_) {
    auto it = ops_changed_.find(name);
    const bool changed = it != ops_changed_.end() && it->second;
    if (a.version == 0 || changed) {
      ++a.version;
      a.version_changed_ms = now;
      moved = true;
    }
  }
  ops_changed_.clear();
  meta_changed_ = false;
  if (moved) {
    ++revision_;
    unsaved_ = true;
  }
  return moved;
}

void catalog::restore(std::map<std::string, api> apis, std::uint64_t revision) {
  apis_ = std::move(apis);
  revision_ = revision;
  ops_changed_.clear();
  meta_changed_ = false;
  unsaved_ = false;
  rebuild_index();
}

}  // namespace aforo::core::discovery
