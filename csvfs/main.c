// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * main.c - the csvfs daemon: parse the command line, open the backend and
 * its volume record, connect to csvfs-lockd, mount, and run the
 * multi-threaded FUSE session loop until unmounted.
 *
 * Everything that can fail because of the operator's input (options,
 * backend, lockd) is checked before the mount, so a failure leaves no
 * mount behind: exit 2 for usage errors, 1 for everything else, with a
 * one-line reason on stderr.  Threads (lockd events, ownership worker,
 * invalidation) start only after fuse_daemonize() has forked.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aio.h"
#include "fs.h"
#include "fuse_uring.h"
#include "lkm.h"
#include "lockc.h"
#include "log.h"
#include "opts.h"
#include "own.h"
#include "replica.h"
#include "volume.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: csvfs SOURCE MOUNTPOINT [-f] [-d] [-o opt[,opt...]]\n"
		"  SOURCE      /abs/dir | dir:/abs/dir | nfs://server/export |\n"
		"              block:/dev/... | block:/path/lun.img\n"
		"  -f          stay in the foreground\n"
		"  -d          debug: foreground, log FUSE requests\n"
		"  -o lockd=PATH          csvfs-lockd socket (default %s;\n"
		"                         'none': single host, no cluster)\n"
		"  -o node=NAME           require lockd to be this node\n"
		"  -o cache=direct|auto   page cache use (default direct)\n"
		"  -o attr_timeout=S, entry_timeout=S  (default 1)\n"
		"  -o idle_release_ms=N   release ownership after N ms\n"
		"                         without writes (default 10000)\n"
		"  -o acquire_timeout=MS  a write waits this long for write\n"
		"                         ownership, then fails with EIO\n"
		"                         (default 15000)\n"
		"  -o label=TEXT          label of a newly created volume\n"
		"  -o max_threads=N       FUSE worker threads (default 64)\n"
		"  -o aio=on|off          direct I/O through io_uring\n"
		"                         (default on)\n"
		"  -o uring=auto|on|off   FUSE requests over io_uring\n"
		"                         (default auto)\n"
		"  -o allow_other,default_permissions,ro,... FUSE options\n"
		"See csvfs(8).\n",
		LKM_DEFAULT_SOCKET);
}

/*
 * Read the volume record.  On a first mount none exists yet: a new one is
 * prepared in fs->vol and *create set; it is written by commit_volume()
 * only once everything else has been checked, so that a failed mount
 * leaves nothing behind.
 */
static int open_volume(struct cv_fs *fs, bool *create, char *err,
		       size_t errlen)
{
	struct backend *be = &fs->be;
	int rc;

	*create = false;
	rc = be->ops->vol_read(be, &fs->vol);
	if (rc == -ENOENT && fs->opts->read_only) {
		snprintf(err, errlen, "%s is not a csvfs volume yet and the "
			 "mount is read-only (mount it read-write once, or "
			 "run csvfs-admin format)", fs->opts->source);
		return rc;
	}
	if (rc == -ENOENT) {
		rc = cv_volrec_new(&fs->vol, fs->opts->label);
		if (rc)
			snprintf(err, errlen, "-o label=%s: at most %d "
				 "characters, one line", fs->opts->label,
				 CV_LABEL_MAX - 1);
		*create = !rc;
		return rc;
	}
	if (rc == -EUCLEAN)
		snprintf(err, errlen, "%s/%s exists but is not a csvfs "
			 "volume record", fs->opts->source, CV_META_DIR);
	else if (rc)
		snprintf(err, errlen, "cannot read the volume record in "
			 "%s: %s", fs->opts->source, strerror(-rc));
	else if (fs->vol.format_version != CV_FORMAT_VERSION) {
		snprintf(err, errlen, "%s: volume format %u is not supported "
			 "(this csvfs knows %u)", fs->opts->source,
			 fs->vol.format_version, CV_FORMAT_VERSION);
		rc = -EPROTONOSUPPORT;
	}
	return rc;
}

/* Write the prepared record; another node may have won the race. */
static int commit_volume(struct cv_fs *fs, bool *changed, char *err,
			 size_t errlen)
{
	struct cv_volrec mine = fs->vol;
	int rc;

	*changed = false;
	rc = fs->be.ops->vol_create(&fs->be, &mine);
	if (rc == -EEXIST) {
		rc = fs->be.ops->vol_read(&fs->be, &fs->vol);
		*changed = !rc && memcmp(mine.uuid, fs->vol.uuid, 16);
	}
	if (rc)
		snprintf(err, errlen, "cannot create the volume record in "
			 "%s/%s: %s", fs->opts->source, CV_META_DIR,
			 strerror(-rc));
	return rc;
}

static int open_backend(struct cv_fs *fs, bool *create, char *err,
			size_t errlen)
{
	int rc;

	rc = backend_open(&fs->be, fs->opts->source, err, errlen);
	if (rc)
		return rc;
	rc = open_volume(fs, create, err, errlen);
	if (!rc)
		rc = cv_itable_init(&fs->itab, &fs->be);
	if (rc && !err[0])
		snprintf(err, errlen, "cannot set up %s: %s",
			 fs->opts->source, strerror(-rc));
	return rc;
}

/* The root, once the backend is claimed (a block volume's engine). */
static int open_root(struct cv_fs *fs, char *err, size_t errlen)
{
	struct be_node *root;
	struct stat st;
	int rc;

	rc = fs->be.ops->root(&fs->be, &root, &st);
	if (!rc) {
		fs->root_dev = st.st_dev;
		rc = cv_inode_set_root(&fs->itab, root, st.st_dev, st.st_ino);
		if (rc)
			fs->be.ops->node_put(&fs->be, root);
	}
	if (rc)
		snprintf(err, errlen, "cannot open the root of %s: %s",
			 fs->opts->source, strerror(-rc));
	return rc;
}

static int check_mountpoint(const char *mnt, char *err, size_t errlen)
{
	struct stat st;

	if (stat(mnt, &st)) {
		snprintf(err, errlen, "mount point %s: %s", mnt,
			 strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "mount point %s is not a directory",
			 mnt);
		return -ENOTDIR;
	}
	return 0;
}

static struct cv_own_ops own_ops;

/*
 * own's callbacks take fs as their argument but acquire/release want the
 * lockd client: route them through fs.
 */
static int own_acquire(void *arg, uint64_t fileid, int timeout_ms,
		       uint64_t *epoch)
{
	return cv_lockc_acquire(((struct cv_fs *)arg)->lc, fileid, timeout_ms,
				epoch);
}

static int own_acquire_cancel(void *arg, uint64_t fileid)
{
	return cv_lockc_acquire_cancel(((struct cv_fs *)arg)->lc, fileid);
}

static int own_release(void *arg, uint64_t fileid, uint64_t epoch)
{
	return cv_lockc_release(((struct cv_fs *)arg)->lc, fileid, epoch);
}

/* Hello with the volume's identity: csvfs-admin volumes shows it. */
static int lockd_connect(struct cv_fs *fs, char *err, size_t errlen)
{
	const struct cv_opts *o = fs->opts;
	struct cv_lockc_mount mnt = {
		.volume = fs->vol.uuid,
		.vol_label = fs->vol.label,
		.source = o->source,
		.mountpoint = o->mountpoint,
	};

	return cv_lockc_connect(o->lockd, &mnt, o->node, err, errlen,
				&fs->lc);
}

static int setup_own(struct cv_fs *fs, char *err, size_t errlen)
{
	const struct cv_opts *o = fs->opts;
	int rc;

	if (!cv_opts_no_lockd(o)) {
		rc = lockd_connect(fs, err, errlen);
		if (rc)
			return rc;
	}
	own_ops.acquire = fs->lc ? own_acquire : NULL;
	own_ops.release = fs->lc ? own_release : NULL;
	own_ops.acquire_cancel = fs->lc ? own_acquire_cancel : NULL;
	own_ops.flush = cv_fs_own_flush;
	own_ops.writeback = cv_fs_own_writeback;
	own_ops.hold = cv_fs_own_hold;
	own_ops.drop = cv_fs_own_drop;
	rc = cv_own_new(&own_ops, fs, o->idle_release_ms, &fs->own);
	if (rc)
		snprintf(err, errlen, "out of memory");
	else
		cv_own_set_acquire_timeout(fs->own, o->acquire_timeout_ms);
	return rc;
}

/* lockd's answers for a backend's claim (struct be_cluster). */
static int claim_try_own(void *arg, uint64_t fileid, uint64_t *epoch,
			 char *holder, size_t cap)
{
	return cv_lockc_try_keep(arg, fileid, epoch, holder, cap);
}

static int claim_release(void *arg, uint64_t fileid, uint64_t epoch)
{
	return cv_lockc_release(arg, fileid, epoch);
}

/* The backend's storage took our write access away (struct be_cluster
 * lost): say so and poison every file. */
static void claim_lost(void *arg, const char *why)
{
	struct cv_fs *fs = arg;

	fprintf(stderr,
		"csvfs: %s: lost ownership of the volume's storage (%s): "
		"every file open for writing on this node now fails with "
		"EIO; unmount\n",
		fs->opts->source, why);
	if (fs->own)
		cv_own_ev_poison_all(fs->own);
}

static int claim_owner(void *arg, uint64_t fileid, char *name, size_t cap,
		       uint64_t *epoch)
{
	return cv_lockc_owner(arg, fileid, name, cap, epoch);
}

/*
 * A backend that must be the only user of its storage (a block volume's
 * coordinator) takes it now: after the lockd hello, before the volume
 * record is written and before the mount.
 */
static int claim_backend(struct cv_fs *fs, char *err, size_t errlen)
{
	char host[256] = "";
	struct be_cluster cl = { .node = host,
				 .lost = claim_lost,
				 .lost_arg = fs };

	if (!fs->be.ops->claim)
		return 0;
	if (fs->lc) {
		cl.node = cv_lockc_node(fs->lc);
		cl.node_id = cv_lockc_node_id(fs->lc);
		cl.try_own = claim_try_own;
		cl.release = claim_release;
		cl.owner = claim_owner;
		cl.arg = fs->lc;
	} else {
		gethostname(host, sizeof(host) - 1);
	}
	return fs->be.ops->claim(&fs->be, &cl, err, errlen);
}

static struct fuse_session *new_session(struct cv_fs *fs, char *err,
					size_t errlen)
{
	const struct cv_opts *o = fs->opts;
	char optbuf[CV_OPTS_FUSE_MAX + 512];
	char *argv[5];
	int argc = 0;
	struct fuse_args args;
	struct fuse_lowlevel_ops ops;
	struct fuse_session *se;

	snprintf(optbuf, sizeof(optbuf),
		 "default_permissions,fsname=%s,subtype=csvfs%s%s", o->source,
		 o->fuse_opts[0] ? "," : "", o->fuse_opts);
	argv[argc++] = (char *)"csvfs";
	argv[argc++] = (char *)"-o";
	argv[argc++] = optbuf;
	if (o->debug)
		argv[argc++] = (char *)"-d";
	argv[argc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	ops = cv_fs_ops;
	if (!fs->lc) {
		/* lockd=none: the kernel keeps locks local to this host */
		ops.getlk = NULL;
		ops.setlk = NULL;
		ops.flock = NULL;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args); /* the session keeps copies */
	if (!se)
		snprintf(err, errlen, "cannot create the FUSE session "
			 "(bad FUSE option in -o?)");
	return se;
}

static int run(struct cv_fs *fs)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	if (!cfg)
		return -ENOMEM;
	/*
	 * Keep every worker once started: with fewer idle threads than the
	 * queue depth (VMs run 16-64 requests at once), libfuse ends and
	 * starts threads all the time.  An idle thread costs a stack and
	 * its bounce buffer.  clone_fd gives each worker its own /dev/fuse
	 * descriptor, so workers do not all wake on one wait queue.
	 */
	fuse_loop_cfg_set_max_threads(cfg, fs->opts->max_threads);
	fuse_loop_cfg_set_idle_threads(cfg, fs->opts->max_threads);
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	rc = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/*
 * The ring for direct backing I/O, where the backend can use one.  A
 * kernel without io_uring (or one that forbids it: io_uring_disabled, a
 * seccomp filter) leaves the workers doing their I/O themselves: slower,
 * the same semantics, so the mount goes ahead.
 */
static void start_aio(struct cv_fs *fs)
{
	int rc;

	if (!fs->opts->aio || (!fs->be.ops->aio_fd && !fs->be.ops->aio_map))
		return;
	rc = cv_aio_new(CV_MAX_BACKGROUND, &fs->aio);
	if (rc)
		log_warn("io_uring not available (%s): direct I/O is done by "
			 "the FUSE workers (aio=off)", strerror(-rc));
}

/* Once the session has ended: wait for every submitted request. */
static void stop_aio(struct cv_fs *fs)
{
	struct cv_aio_stats st;

	if (!fs->aio)
		return;
	cv_aio_stop(fs->aio); /* every submitted request answered */
	cv_aio_stats(fs->aio, &st);
	log_info("direct I/O through io_uring: %" PRIu64 " requests, %.1f "
		 "completions per ring-thread pass, %" PRIu64 " wake-ups by a "
		 "worker, %" PRIu64 " left to the workers (ring full)",
		 st.submitted,
		 st.wakeups ? (double)st.completed / (double)st.wakeups : 0.0,
		 st.kicks, st.refused);
	cv_aio_free(fs->aio);
	fs->aio = NULL;
}

/* After daemonizing: threads for lockd events, ownership, invalidation,
 * I/O completions. */
static int start_threads(struct cv_fs *fs)
{
	int rc = cv_fs_inval_start(fs);

	if (!rc && fs->be.ops->start)
		rc = fs->be.ops->start(&fs->be);
	start_aio(fs);
	if (!rc)
		rc = cv_own_start(fs->own);
	if (!rc && fs->lc)
		rc = cv_lockc_start(fs->lc, fs->own, cv_fs_owner_changed, fs);
	if (!rc)
		rc = cv_rep_start(fs->rep);
	if (rc)
		log_err("cannot start threads: %s", strerror(-rc));
	return rc;
}

int main(int argc, char *argv[])
{
	static struct cv_fs fs = {
		.fh_lock = PTHREAD_MUTEX_INITIALIZER,
		.se_lock = PTHREAD_RWLOCK_INITIALIZER,
	};
	struct cv_opts opts;
	bool create_vol = false, changed;
	char err[512] = "";
	int rc, status = 1;

	rc = cv_opts_parse(argc, argv, &opts, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "csvfs: %s\n", err);
		usage(stderr);
		return 2;
	}
	if (opts.help) {
		usage(stdout);
		return 0;
	}
	if (opts.version) {
		printf("csvfs %s (libfuse %s)\n", PACKAGE_VERSION,
		       fuse_pkgversion());
		return 0;
	}
	cv_log_init("csvfs", opts.foreground, opts.debug ? LOG_DEBUG
							  : LOG_INFO);
	umask(0);
	fs.opts = &opts;
	rc = check_mountpoint(opts.mountpoint, err, sizeof(err));
	if (!rc)
		rc = open_backend(&fs, &create_vol, err, sizeof(err));
	if (rc) {
		if (rc == -EINVAL && !fs.be.ops)
			status = 2; /* malformed SOURCE */
		goto out_msg;
	}
	rc = setup_own(&fs, err, sizeof(err));
	if (rc)
		goto out_backend;
	rc = claim_backend(&fs, err, sizeof(err));
	if (!rc)
		rc = open_root(&fs, err, sizeof(err));
	if (rc)
		goto out_own;
	if (create_vol) {
		rc = commit_volume(&fs, &changed, err, sizeof(err));
		if (!rc && changed && fs.lc) {
			/* hello again, with the volume that won */
			cv_lockc_close(fs.lc);
			fs.lc = NULL;
			rc = lockd_connect(&fs, err, sizeof(err));
		}
		if (rc)
			goto out_own;
	}
	rc = cv_rep_new(&fs, &fs.rep);
	if (rc) {
		snprintf(err, sizeof(err), "cannot set up replication: %s",
			 strerror(-rc));
		goto out_own;
	}
	fs.se = new_session(&fs, err, sizeof(err));
	if (!fs.se)
		goto out_own;
	if (fuse_set_signal_handlers(fs.se)) {
		snprintf(err, sizeof(err), "cannot set signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(fs.se, opts.mountpoint)) {
		snprintf(err, sizeof(err), "cannot mount on %s",
			 opts.mountpoint);
		goto out_signals;
	}
	cv_fs_session_live(&fs, true);
	rc = cv_fuseio_install(&fs);
	if (rc)
		log_warn("cannot take over /dev/fuse I/O (%s): no shared mmap "
			 "of direct-I/O files", strerror(-rc));
	if (fuse_daemonize(opts.foreground)) {
		snprintf(err, sizeof(err), "cannot daemonize");
		goto out_unmount;
	}
	log_notice("mounted %s on %s (volume label '%s', lockd %s)",
		   opts.source, opts.mountpoint, fs.vol.label, opts.lockd);
	if (start_threads(&fs) == 0 && run(&fs) == 0)
		status = 0;
	err[0] = '\0';
	stop_aio(&fs);
	cv_uring_stop(atomic_load(&fs.uring)); /* after aio: its replies */
	atomic_store(&fs.uring, NULL);
	cv_fs_close_files(&fs);
	cv_lockc_stop(fs.lc); /* no more events for own and invalidation */
	cv_fs_inval_stop(&fs);
	cv_rep_stop(fs.rep);
out_unmount:
	/* The connection is closed now: a writeback notification still
	 * under way (own's worker) fails and returns; later ones are not
	 * sent to a session about to be freed. */
	fuse_session_unmount(fs.se);
	cv_fs_session_live(&fs, false);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_own:
	/* the backend lets its claim go while lockd still holds it */
	if (fs.be.ops && fs.be.ops->stop)
		fs.be.ops->stop(&fs.be);
	cv_own_free(fs.own); /* releases what is still owned */
	cv_rep_free(fs.rep); /* after: a release hands its changes off */
	fs.rep = NULL;
	cv_lockc_close(fs.lc);
out_backend:
	cv_itable_destroy(&fs.itab);
	if (fs.be.ops)
		fs.be.ops->destroy(&fs.be);
out_msg:
	if (err[0])
		fprintf(stderr, "csvfs: %s\n", err);
	return status;
}
