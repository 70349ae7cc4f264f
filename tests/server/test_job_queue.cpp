// The job queue: order, capacity, cancellation of queued and running jobs, shutdown with a grace period,
// retention of finished jobs, change notification.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server/job_queue.h"

namespace a2f_server {
namespace {

using namespace std::chrono_literals;

// A runner that reports `steps` progress steps `delay` apart and returns one image per job.
JobRunner stepping_runner(int steps, std::chrono::milliseconds delay,
                          std::vector<std::string>* order = nullptr, std::mutex* order_mu = nullptr) {
  return [=](const Job& job, const ProgressSink& progress) {
    if (order) {
      std::lock_guard lock(*order_mu);
      order->push_back(job.id());
    }
    for (int s = 1; s <= steps; ++s) {
      std::this_thread::sleep_for(delay);
      if (!progress({"denoise", s, steps})) throw arc2face::Cancelled();
    }
    JobImage im;
    im.index = 0;
    im.seed = job.spec().request.seed;
    im.png = "png";
    return std::vector<JobImage>{im};
  };
}

JobState wait_terminal(JobQueue& q, const std::shared_ptr<Job>& job,
                       std::chrono::milliseconds limit = 5000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  JobSnapshot s = q.snapshot(*job);
  while (!is_terminal(s.state) && std::chrono::steady_clock::now() < end) {
    q.wait_for_change(*job, s.version, 100ms);
    s = q.snapshot(*job);
  }
  return s.state;
}

TEST(JobQueue, RunsJobsInOrderAndKeepsResults) {
  std::vector<std::string> order;
  std::mutex mu;
  JobQueue q({}, stepping_runner(2, 1ms, &order, &mu));
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 4; ++i) {
    JobSpec spec;
    spec.request.seed = i;
    jobs.push_back(JobQueue::make_job(spec));
    ASSERT_EQ(q.submit(jobs.back()), SubmitResult::accepted);
  }
  for (auto& j : jobs) EXPECT_EQ(wait_terminal(q, j), JobState::succeeded);
  ASSERT_EQ(order.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(order[size_t(i)], jobs[size_t(i)]->id());
  auto im = q.image(jobs[2]->id(), 0);
  ASSERT_TRUE(im);
  EXPECT_EQ(im->seed, 2);
  EXPECT_EQ(im->png, "png");
  auto s = q.snapshot(*jobs[2]);
  EXPECT_DOUBLE_EQ(s.progress.fraction, 1.0);
  EXPECT_TRUE(s.images[0].png.empty());  // snapshots carry metadata only
  EXPECT_EQ(q.stats().completed_total, 4u);
}

TEST(JobQueue, IdsAreUniqueAndUnguessable) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(JobQueue::make_job({})->id());
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(ids.begin()->size(), 32u);
}

TEST(JobQueue, BoundedQueueRefusesWhenFull) {
  JobQueueOptions o;
  o.max_queued = 2;
  JobQueue q(o, stepping_runner(50, 5ms));
  auto running = JobQueue::make_job({});
  ASSERT_EQ(q.submit(running), SubmitResult::accepted);
  // Wait until the worker took it, so the queue is empty again.
  for (int i = 0; i < 200 && q.snapshot(*running).state != JobState::running; ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(q.submit(JobQueue::make_job({})), SubmitResult::accepted);
  EXPECT_EQ(q.submit(JobQueue::make_job({})), SubmitResult::accepted);
  EXPECT_EQ(q.submit(JobQueue::make_job({})), SubmitResult::queue_full);
  EXPECT_EQ(q.stats().queued, 2u);
  EXPECT_EQ(q.stats().running, 1u);
  q.shutdown(0ms);
  EXPECT_EQ(q.submit(JobQueue::make_job({})), SubmitResult::shutting_down);
}

TEST(JobQueue, CancelQueuedAndRunning) {
  JobQueue q({}, stepping_runner(1000, 2ms));
  auto a = JobQueue::make_job({});
  auto b = JobQueue::make_job({});
  ASSERT_EQ(q.submit(a), SubmitResult::accepted);
  ASSERT_EQ(q.submit(b), SubmitResult::accepted);
  for (int i = 0; i < 500 && q.snapshot(*a).progress.step < 2; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(q.snapshot(*b).queue_position, 1u);
  EXPECT_EQ(q.cancel(b->id()), JobState::cancelled);  // queued: at once
  EXPECT_EQ(q.cancel(a->id()), JobState::running);    // running: at its next progress report
  EXPECT_EQ(wait_terminal(q, a, 2000ms), JobState::cancelled);
  EXPECT_LT(q.snapshot(*a).progress.step, 1000);
  EXPECT_FALSE(q.cancel("nope"));
  EXPECT_TRUE(q.remove(a->id()));
  EXPECT_FALSE(q.find(a->id()));
}

TEST(JobQueue, ShutdownLetsTheRunningJobFinishWithinGrace) {
  JobQueue q({}, stepping_runner(10, 5ms));
  auto a = JobQueue::make_job({});
  auto b = JobQueue::make_job({});
  q.submit(a);
  q.submit(b);
  for (int i = 0; i < 500 && q.snapshot(*a).state != JobState::running; ++i) std::this_thread::sleep_for(1ms);
  q.shutdown(5000ms);
  EXPECT_EQ(q.snapshot(*a).state, JobState::succeeded);
  EXPECT_EQ(q.snapshot(*b).state, JobState::cancelled);
  EXPECT_NE(q.snapshot(*b).error.find("shutting down"), std::string::npos);
}

TEST(JobQueue, ShutdownCancelsTheRunningJobAfterGrace) {
  JobQueue q({}, stepping_runner(100000, 1ms));
  auto a = JobQueue::make_job({});
  q.submit(a);
  for (int i = 0; i < 500 && q.snapshot(*a).state != JobState::running; ++i) std::this_thread::sleep_for(1ms);
  auto t0 = std::chrono::steady_clock::now();
  q.shutdown(50ms);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(q.snapshot(*a).state, JobState::cancelled);
  EXPECT_LT(took, 2000ms);
}

TEST(JobQueue, FailuresCarryTheMessage) {
  JobQueue q({}, [](const Job&, const ProgressSink&) -> std::vector<JobImage> {
    throw arc2face::Error("model file broken");
  });
  auto a = JobQueue::make_job({});
  q.submit(a);
  EXPECT_EQ(wait_terminal(q, a), JobState::failed);
  EXPECT_EQ(q.snapshot(*a).error, "model file broken");
}

TEST(JobQueue, KeepsOnlyTheNewestFinishedJobs) {
  JobQueueOptions o;
  o.max_finished = 3;
  JobQueue q(o, stepping_runner(1, 0ms));
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 6; ++i) {
    jobs.push_back(JobQueue::make_job({}));
    q.submit(jobs.back());
    wait_terminal(q, jobs.back());
  }
  EXPECT_FALSE(q.find(jobs[0]->id()));
  EXPECT_FALSE(q.find(jobs[2]->id()));
  EXPECT_TRUE(q.find(jobs[3]->id()));
  EXPECT_TRUE(q.find(jobs[5]->id()));
  EXPECT_EQ(q.stats().finished, 3u);
}

TEST(JobQueue, FinishedJobsExpire) {
  JobQueueOptions o;
  o.finished_ttl = std::chrono::seconds(0);
  JobQueue q(o, stepping_runner(1, 0ms));
  auto a = JobQueue::make_job({});
  q.submit(a);
  wait_terminal(q, a);
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(q.find(a->id()));
}

TEST(JobQueue, WaitForChangeWakesOnProgressAndAbort) {
  JobQueue q({}, stepping_runner(5, 20ms));
  auto a = JobQueue::make_job({});
  q.submit(a);
  uint64_t v = q.snapshot(*a).version;
  uint64_t v2 = q.wait_for_change(*a, v, 2000ms);
  EXPECT_NE(v2, v);
  wait_terminal(q, a);
  uint64_t last = q.snapshot(*a).version;
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    q.abort_waiters();
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(q.wait_for_change(*a, last, 5000ms), last);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);
  t.join();
}

}  // namespace
}  // namespace a2f_server
