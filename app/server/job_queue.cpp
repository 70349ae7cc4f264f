#include "server/job_queue.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace a2f_server {

namespace {

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Overall completion from a stage report: the denoising loop dominates the time of a job.
double fraction_of(const arc2face::Progress& p) {
  double within = p.total > 0 ? std::min(1.0, std::max(0.0, double(p.step) / p.total)) : 0.0;
  if (p.stage == "encode") return 0.02 * within;
  if (p.stage == "denoise") return 0.03 + 0.87 * within;
  if (p.stage == "decode") return 0.90 + 0.05 * within;
  if (p.stage == "similarity") return 0.95 + 0.05 * within;
  return 0.0;
}

}  // namespace

const char* to_string(JobState s) {
  switch (s) {
    case JobState::queued:
      return "queued";
    case JobState::running:
      return "running";
    case JobState::succeeded:
      return "succeeded";
    case JobState::failed:
      return "failed";
    case JobState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

JobQueue::JobQueue(JobQueueOptions options, JobRunner runner)
    : options_(options), runner_(std::move(runner)) {
  worker_ = std::thread([this] { worker_loop(); });
}

JobQueue::~JobQueue() {
  shutdown(std::chrono::milliseconds(0));
}

std::shared_ptr<Job> JobQueue::make_job(JobSpec spec) {
  static std::mutex rng_mu;
  static std::mt19937_64 rng{[] {
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd();
  }()};
  uint64_t a, b;
  {
    std::lock_guard lock(rng_mu);
    a = rng();
    b = rng();
  }
  char id[33];
  std::snprintf(id, sizeof id, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
  return std::make_shared<Job>(id, std::move(spec));
}

SubmitResult JobQueue::submit(const std::shared_ptr<Job>& job) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return SubmitResult::shutting_down;
  if (queued_.size() >= options_.max_queued) return SubmitResult::queue_full;
  evict_locked();
  job->created_at_ = unix_now();
  jobs_[job->id()] = job;
  queued_.push_back(job);
  work_cv_.notify_one();
  return SubmitResult::accepted;
}

std::shared_ptr<Job> JobQueue::find(const std::string& id) {
  std::lock_guard lock(mu_);
  evict_locked();
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

JobSnapshot JobQueue::snapshot(const Job& job) {
  std::lock_guard lock(mu_);
  JobSnapshot s;
  s.id = job.id_;
  s.state = job.state_;
  s.progress = job.progress_;
  s.error = job.error_;
  s.version = job.version_;
  s.created_at = job.created_at_;
  s.started_at = job.started_at_;
  s.finished_at = job.finished_at_;
  for (const auto& im : job.images_) {
    JobImage meta = im;
    meta.png.clear();
    s.images.push_back(std::move(meta));
  }
  if (job.state_ == JobState::queued) {
    for (size_t i = 0; i < queued_.size(); ++i) {
      if (queued_[i].get() == &job) s.queue_position = i + 1;
    }
  }
  return s;
}

std::optional<JobSnapshot> JobQueue::snapshot(const std::string& id) {
  auto job = find(id);
  if (!job) return std::nullopt;
  return snapshot(*job);
}

std::optional<JobImage> JobQueue::image(const std::string& id, int index) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  for (const auto& im : it->second->images_) {
    if (im.index == index) return im;
  }
  return std::nullopt;
}

std::optional<JobState> JobQueue::cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  Job& job = *it->second;
  if (job.state_ == JobState::queued) {
    for (auto q = queued_.begin(); q != queued_.end(); ++q) {
      if (q->get() == &job) {
        queued_.erase(q);
        break;
      }
    }
    job.error_ = "cancelled before it started";
    finish_locked(job, JobState::cancelled);
  } else if (job.state_ == JobState::running && !job.cancel_requested_) {
    job.cancel_requested_ = true;
    bump_locked(job);
  }
  return job.state_;
}

bool JobQueue::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || !is_terminal(it->second->state_)) return false;
  jobs_.erase(it);
  for (auto f = finished_order_.begin(); f != finished_order_.end(); ++f) {
    if (*f == id) {
      finished_order_.erase(f);
      break;
    }
  }
  return true;
}

uint64_t JobQueue::wait_for_change(const Job& job, uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  change_cv_.wait_for(lock, timeout, [&] { return job.version_ != seen || aborted_; });
  return job.version_;
}

void JobQueue::abort_waiters() {
  std::lock_guard lock(mu_);
  aborted_ = true;
  change_cv_.notify_all();
}

bool JobQueue::waiters_aborted() const {
  std::lock_guard lock(mu_);
  return aborted_;
}

JobQueue::Stats JobQueue::stats() {
  std::lock_guard lock(mu_);
  evict_locked();
  Stats s;
  s.queued = queued_.size();
  s.running = running_ ? 1 : 0;
  s.finished = finished_order_.size();
  s.completed_total = completed_total_;
  s.shutting_down = shutting_down_;
  return s;
}

bool JobQueue::shutting_down() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

void JobQueue::shutdown(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mu_);
    if (!shutting_down_) {
      shutting_down_ = true;
      while (!queued_.empty()) {
        auto job = queued_.front();
        queued_.pop_front();
        job->error_ = "cancelled: the server is shutting down";
        finish_locked(*job, JobState::cancelled);
      }
      work_cv_.notify_all();
    }
    // Let the running job finish within the grace period, then ask it to stop.
    change_cv_.wait_for(lock, grace, [&] { return running_ == nullptr; });
    if (running_ && !running_->cancel_requested_) {
      running_->cancel_requested_ = true;
      bump_locked(*running_);
    }
  }
  if (worker_.joinable()) worker_.join();
}

void JobQueue::bump_locked(Job& job) {
  ++job.version_;
  change_cv_.notify_all();
}

void JobQueue::finish_locked(Job& job, JobState state) {
  job.state_ = state;
  job.finished_at_ = unix_now();
  job.finished_steady_ = std::chrono::steady_clock::now();
  if (state == JobState::succeeded) {
    job.progress_.stage = "done";
    job.progress_.fraction = 1.0;
  }
  finished_order_.push_back(job.id_);
  ++completed_total_;
  bump_locked(job);
  evict_locked();
}

void JobQueue::evict_locked() {
  auto now = std::chrono::steady_clock::now();
  while (!finished_order_.empty()) {
    auto it = jobs_.find(finished_order_.front());
    bool too_many = finished_order_.size() > options_.max_finished;
    bool too_old = it != jobs_.end() && now - it->second->finished_steady_ > options_.finished_ttl;
    if (it != jobs_.end() && !too_many && !too_old) break;
    if (it != jobs_.end()) jobs_.erase(it);
    finished_order_.pop_front();
  }
}

void JobQueue::worker_loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return shutting_down_ || !queued_.empty(); });
      if (queued_.empty()) return;  // shutting down and nothing left
      job = queued_.front();
      queued_.pop_front();
      running_ = job;
      job->state_ = JobState::running;
      job->started_at_ = unix_now();
      job->progress_.stage = "starting";
      bump_locked(*job);
    }
    ProgressSink sink = [this, job](const arc2face::Progress& p) {
      std::lock_guard lock(mu_);
      job->progress_.stage = p.stage;
      job->progress_.step = p.step;
      job->progress_.total = p.total;
      job->progress_.fraction = std::max(job->progress_.fraction, fraction_of(p));
      bump_locked(*job);
      return !job->cancel_requested_;
    };
    std::vector<JobImage> images;
    JobState end = JobState::succeeded;
    std::string error;
    try {
      images = runner_(*job, sink);
    } catch (const arc2face::Cancelled&) {
      end = JobState::cancelled;
      error = "cancelled";
    } catch (const std::bad_alloc&) {
      end = JobState::failed;
      error = "out of memory while generating; try fewer or smaller images";
    } catch (const std::exception& e) {
      end = JobState::failed;
      error = e.what();
    } catch (...) {
      end = JobState::failed;
      error = "unknown error while generating";
    }
    std::lock_guard lock(mu_);
    job->images_ = std::move(images);
    job->error_ = std::move(error);
    running_.reset();
    finish_locked(*job, end);
  }
}

}  // namespace a2f_server
