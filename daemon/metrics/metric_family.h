// Small builders for prometheus-cpp metric families, shared by the metric
// renderers (metrics_render.cc, metrics_render_repl.cc). They run on the
// exposer's thread, on private copies.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kvd::daemon::metric_family {

inline prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// One sample: a counter's or a gauge's value, by the family's type.
inline void AddValue(prometheus::MetricFamily* f, double v, std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f->type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f->metric.push_back(std::move(m));
}

// A family with one unlabelled sample.
inline prometheus::MetricFamily One(std::string name, std::string help, prometheus::MetricType type, double v) {
  prometheus::MetricFamily f = Family(std::move(name), std::move(help), type);
  AddValue(&f, v);
  return f;
}

inline double D(uint64_t v) { return static_cast<double>(v); }

}  // namespace kvd::daemon::metric_family
