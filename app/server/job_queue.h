// A bounded queue of generation jobs served by one worker thread (a Pipeline runs one generation at a time).
//
// Jobs move queued → running → succeeded | failed | cancelled. Finished jobs are kept (with their images) for
// GET /v1/jobs/{id} until there are more than `max_finished` of them or they are older than `finished_ttl`.
// Every state or progress change bumps the job's version and wakes wait_for_change() (server-sent events).
// Thread safety: every member function may be called from any thread.
#pragma once
#include <arc2face/arc2face.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace a2f_server {

enum class JobState { queued, running, succeeded, failed, cancelled };
const char* to_string(JobState s);
inline bool is_terminal(JobState s) {
  return s != JobState::queued && s != JobState::running;
}

// One generated image of a finished job.
struct JobImage {
  int index = 0;
  int64_t seed = 0;
  int width = 0, height = 0;
  std::string png;                      // encoded PNG bytes
  std::optional<double> id_similarity;  // cosine of the result's face embedding to the requested identity
  std::string note;                     // why id_similarity is null, when it is
};

// What the worker needs to run a job, fixed at submission.
struct JobSpec {
  arc2face::GenerateRequest request;
  std::vector<float> identity;  // the L2-normalised identity the images should have (for ID similarity)
  nlohmann::json params;        // the effective parameters, echoed in the job's JSON
  nlohmann::json inputs;        // what was found in the uploaded photos (face boxes), echoed too
};

struct JobProgress {
  std::string stage = "queued";  // queued | encode | denoise | decode | similarity | done
  int step = 0, total = 0;
  double fraction = 0;  // 0..1 over the whole job
};

// A consistent copy of a job's state (image metadata without the PNG bytes).
struct JobSnapshot {
  std::string id;
  JobState state = JobState::queued;
  JobProgress progress;
  std::vector<JobImage> images;  // png left empty
  std::string error;
  uint64_t version = 0;
  size_t queue_position = 0;                               // 1-based among queued jobs; 0 when not queued
  double created_at = 0, started_at = 0, finished_at = 0;  // unix seconds; 0: not yet
};

class Job {
 public:
  Job(std::string id, JobSpec spec) : id_(std::move(id)), spec_(std::move(spec)) {}
  const std::string& id() const { return id_; }
  const JobSpec& spec() const { return spec_; }

 private:
  friend class JobQueue;
  const std::string id_;
  const JobSpec spec_;
  // Guarded by the owning JobQueue's mutex.
  JobState state_ = JobState::queued;
  JobProgress progress_;
  std::vector<JobImage> images_;
  std::string error_;
  uint64_t version_ = 1;
  bool cancel_requested_ = false;
  double created_at_ = 0, started_at_ = 0, finished_at_ = 0;
  std::chrono::steady_clock::time_point finished_steady_{};
};

// Called by the worker for each progress report; returns false when the job should stop (cancelled or the
// server is shutting down) — the runner passes that on to Pipeline::generate, which then throws Cancelled.
using ProgressSink = std::function<bool(const arc2face::Progress&)>;
// Runs one job; throws arc2face::Cancelled when stopped, arc2face::Error (or anything) when it fails.
using JobRunner = std::function<std::vector<JobImage>(const Job& job, const ProgressSink& progress)>;

struct JobQueueOptions {
  size_t max_queued = 8;     // jobs waiting behind the running one; more → queue_full
  size_t max_finished = 32;  // finished jobs kept for GET; the oldest beyond this are forgotten
  std::chrono::seconds finished_ttl{900};
};

enum class SubmitResult { accepted, queue_full, shutting_down };

class JobQueue {
 public:
  JobQueue(JobQueueOptions options, JobRunner runner);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // A new job with a fresh unguessable id (not yet submitted).
  static std::shared_ptr<Job> make_job(JobSpec spec);
  SubmitResult submit(const std::shared_ptr<Job>& job);

  std::shared_ptr<Job> find(const std::string& id);
  std::optional<JobSnapshot> snapshot(const std::string& id);
  JobSnapshot snapshot(const Job& job);
  // The PNG of image `index` of a succeeded job; nullopt when there is none.
  std::optional<JobImage> image(const std::string& id, int index);

  // Cancels a queued or running job (a running one stops at its next progress report). Returns the state
  // after the call, or nullopt for an unknown id.
  std::optional<JobState> cancel(const std::string& id);
  // Forgets a finished job and its images; false when unknown or not finished.
  bool remove(const std::string& id);

  // Blocks until the job's version differs from `seen`, `timeout` passes, or abort_waiters() is called.
  // Returns the job's current version.
  uint64_t wait_for_change(const Job& job, uint64_t seen, std::chrono::milliseconds timeout);
  // Wakes every wait_for_change() for good (used when the HTTP server stops).
  void abort_waiters();
  bool waiters_aborted() const;

  struct Stats {
    size_t queued = 0, running = 0, finished = 0;
    uint64_t completed_total = 0;  // jobs that reached a terminal state since start
    bool shutting_down = false;
  };
  Stats stats();
  const JobQueueOptions& options() const { return options_; }

  // Stops taking jobs: queued jobs are cancelled, the running job gets `grace` to finish and is then
  // cancelled; returns when the worker has exited. Idempotent.
  void shutdown(std::chrono::milliseconds grace);
  bool shutting_down() const;

 private:
  void worker_loop();
  void finish_locked(Job& job, JobState state);
  void evict_locked();
  void bump_locked(Job& job);

  const JobQueueOptions options_;
  const JobRunner runner_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;    // worker: a job was queued or shutdown began
  std::condition_variable change_cv_;  // waiters: some job changed
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> queued_;
  std::deque<std::string> finished_order_;
  std::shared_ptr<Job> running_;
  uint64_t completed_total_ = 0;
  bool shutting_down_ = false;
  bool aborted_ = false;
  std::thread worker_;
};

}  // namespace a2f_server
