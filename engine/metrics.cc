#include "engine/metrics.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace skein {

namespace {

// Value of "key": in a record we wrote ourselves (flat JSON, numbers and one string).
bool find_number(const std::string& line, const std::string& key, double* out) {
  const std::string pat = "\"" + key + "\": ";
  size_t p = line.find(pat);
  if (p == std::string::npos) return false;
  char* end = nullptr;
  *out = std::strtod(line.c_str() + p + pat.size(), &end);
  return end != line.c_str() + p + pat.size();
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

// JSON has no NaN or Infinity: write them as strings so the file stays parseable.
std::string json_number(double v) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  return fmt("%.6g", v);
}

}  // namespace

StatusOr<MetricsLog> MetricsLog::open(const std::string& run_dir, long resume_step) {
  MetricsLog log;
  log.run_dir_ = run_dir;
  const std::string path = run_dir + "/metrics.jsonl";
  std::vector<std::string> kept;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      double step = 0, v = 0;
      if (!find_number(line, "step", &step)) continue;
      if (resume_step < 0 || step > resume_step) continue;
      kept.push_back(line);
      if (line.find("\"type\": \"train\"") != std::string::npos && find_number(line, "loss", &v))
        log.train_.emplace_back(long(step), v);
      if (line.find("\"type\": \"eval\"") != std::string::npos && find_number(line, "val_loss", &v))
        log.eval_.emplace_back(long(step), v);
    }
  }
  // Rewrite atomically with only the kept records (a fresh run starts an empty file).
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::error("cannot write " + tmp + ": is the run folder writable?");
    for (const auto& l : kept) out << l << "\n";
    if (!out.flush()) return Status::error("writing " + tmp + " failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return log;
}

Status MetricsLog::append(const std::string& line) {
  const std::string path = run_dir_ + "/metrics.jsonl";
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
  if (!out.flush()) return Status::error("cannot append to " + path + " (disk full?)");
  return Status();
}

Status MetricsLog::log_train(const TrainRecord& r) {
  train_.emplace_back(r.step, r.loss);
  std::ostringstream s;
  s << "{\"type\": \"train\", \"step\": " << r.step << ", \"loss\": " << json_number(r.loss)
    << ", \"lr\": " << json_number(r.lr) << ", \"grad_norm\": " << json_number(r.grad_norm)
    << ", \"tokens_per_s\": " << json_number(r.tokens_per_s) << ", \"mfu\": " << json_number(r.mfu)
    << ", \"data_wait_frac\": " << json_number(r.data_wait_frac)
    << ", \"elapsed_s\": " << json_number(r.elapsed_s) << "}";
  return append(s.str());
}

Status MetricsLog::log_eval(long step, double val_loss) {
  eval_.emplace_back(step, val_loss);
  return append("{\"type\": \"eval\", \"step\": " + std::to_string(step) +
                ", \"val_loss\": " + json_number(val_loss) + "}");
}

Status MetricsLog::write_plot() const {
  const std::string path = run_dir_ + "/loss.svg", tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << loss_plot_svg(train_, eval_);
    if (!out.flush()) return Status::error("cannot write " + tmp + " (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status();
}

std::string loss_plot_svg(const std::vector<std::pair<long, double>>& train,
                          const std::vector<std::pair<long, double>>& eval) {
  const double W = 720, H = 420, left = 60, right = 20, top = 30, bottom = 50;
  long x0 = 0, x1 = 1;
  double y0 = INFINITY, y1 = -INFINITY;
  for (const auto* series : {&train, &eval})
    for (const auto& [s, v] : *series) {
      if (!std::isfinite(v)) continue;
      x1 = std::max(x1, s);
      y0 = std::min(y0, v);
      y1 = std::max(y1, v);
    }
  if (!(y0 < y1)) {  // no data, or flat
    y0 = std::isfinite(y0) ? y0 - 0.5 : 0;
    y1 = y0 + 1;
  }
  auto px = [&](double s) { return left + (s - x0) / double(x1 - x0) * (W - left - right); };
  auto py = [&](double v) { return top + (y1 - v) / (y1 - y0) * (H - top - bottom); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2
    << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">skein loss</text>\n";
  // axes, ticks and grid
  o << "<g stroke=\"#ccc\">\n";
  for (int i = 0; i <= 5; ++i) {
    const double v = y0 + (y1 - y0) * i / 5, y = py(v);
    o << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << W - right << "\" y2=\"" << y
      << "\"/>\n";
  }
  o << "</g>\n";
  for (int i = 0; i <= 5; ++i) {
    const double v = y0 + (y1 - y0) * i / 5;
    o << "<text x=\"" << left - 6 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">"
      << fmt("%.3g", v) << "</text>\n";
    const double s = x0 + (x1 - x0) * i / 5.0;
    o << "<text x=\"" << px(s) << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">"
      << fmt("%.0f", s) << "</text>\n";
  }
  o << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 10
    << "\" text-anchor=\"middle\">step</text>\n"
    << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right
    << "\" height=\"" << H - top - bottom << "\" fill=\"none\" stroke=\"black\"/>\n";
  auto polyline = [&](const std::vector<std::pair<long, double>>& pts, const char* color) {
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [s, v] : pts)
      if (std::isfinite(v)) o << fmt("%.1f", px(s)) << "," << fmt("%.1f", py(v)) << " ";
    o << "\"/>\n";
  };
  polyline(train, "#1f77b4");
  polyline(eval, "#d62728");
  for (const auto& [s, v] : eval)
    if (std::isfinite(v))
      o << "<circle cx=\"" << px(s) << "\" cy=\"" << py(v) << "\" r=\"3\" fill=\"#d62728\"/>\n";
  o << "<text x=\"" << W - right - 10 << "\" y=\"" << top + 16
    << "\" text-anchor=\"end\" fill=\"#1f77b4\">train</text>\n"
    << "<text x=\"" << W - right - 10 << "\" y=\"" << top + 32
    << "\" text-anchor=\"end\" fill=\"#d62728\">validation</text>\n"
    << "</svg>\n";
  return o.str();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  return buf;
}

std::string format_progress(const Progress& p) {
  char comm[32] = "";
  if (p.comm_frac >= 0) std::snprintf(comm, sizeof(comm), " | comm %.1f%%", 100 * p.comm_frac);
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "step %ld/%ld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | MFU %.1f%% | wait "
                "%.1f%%%s | ETA %s",
                p.step, p.steps, p.loss, p.lr, p.grad_norm, p.tokens_per_s, 100 * p.mfu,
                100 * p.wait_frac, comm, format_duration(p.eta_s).c_str());
  return buf;
}

}  // namespace skein
