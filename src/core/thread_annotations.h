// Clang's thread-safety attributes (-Wthread-safety), as LevelDB's port/thread_annotations.h:
// a member GUARDED_BY(mu_) may only be touched with mu_ held, a method that REQUIRES(mu_) is
// called with it held and one that EXCLUDES(mu_) without. Other compilers see nothing; the
// annotations are documentation there. Use them with steno::Mutex (core/mutex.h): std::mutex
// carries no capability attribute in libstdc++, so the analysis cannot follow it.
#pragma once

#if defined(__clang__)
#define STENO_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define STENO_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) STENO_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY STENO_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) STENO_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) STENO_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) STENO_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) STENO_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) STENO_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) STENO_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) STENO_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) STENO_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RETURN_CAPABILITY(x) STENO_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS STENO_THREAD_ANNOTATION(no_thread_safety_analysis)
