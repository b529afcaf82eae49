/*
 * probe.c - checks that the drm-vm guest gives cosched what it needs from real
 * kernel DRM: virtio_gpu's render node with (timeline) syncobjs, and vgem fences
 * that stay pending until signalled. Prints one line per check ("ok - ..." or
 * "FAIL - ...") and a summary; exits 1 if any check failed.
 *
 *   cc -O2 -Wall -Wextra -o probe tests/drm-vm/probe.c
 *   tests/drm-vm/run.sh -- ./probe
 *
 * Uses only libdrm-dev's drm.h (libdrm 2.4.114 is enough); the vgem, dma-buf and
 * SYNCOBJ_EVENTFD (Linux 6.6) uAPI it lacks is declared below.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <libdrm/drm.h>

/* include/uapi/drm/vgem_drm.h (not shipped by libdrm) */
struct probe_vgem_fence_attach {
	__u32 handle;
	__u32 flags;
	__u32 out_fence;
	__u32 pad;
};
struct probe_vgem_fence_signal {
	__u32 fence;
	__u32 flags;
};
#define PROBE_VGEM_FENCE_WRITE 0x1
#define PROBE_IOCTL_VGEM_FENCE_ATTACH DRM_IOWR(DRM_COMMAND_BASE + 0x1, struct probe_vgem_fence_attach)
#define PROBE_IOCTL_VGEM_FENCE_SIGNAL DRM_IOW(DRM_COMMAND_BASE + 0x2, struct probe_vgem_fence_signal)

/* include/uapi/linux/dma-buf.h, Linux 6.0 */
struct probe_dma_buf_export_sync_file {
	__u32 flags;
	__s32 fd;
};
#define PROBE_DMA_BUF_SYNC_RW 0x3
#define PROBE_DMA_BUF_IOCTL_EXPORT_SYNC_FILE _IOWR('b', 2, struct probe_dma_buf_export_sync_file)

/* include/uapi/drm/drm.h, Linux 6.6 */
struct probe_syncobj_eventfd {
	__u32 handle;
	__u32 flags;
	__u64 point;
	__s32 fd;
	__u32 pad;
};
#define PROBE_IOCTL_SYNCOBJ_EVENTFD DRM_IOWR(0xCF, struct probe_syncobj_eventfd)

static int failures;
static int checks;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;
	checks++;
	failures += !ok;
	printf("%s - ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* 0 or -errno */
static int xioctl(int fd, unsigned long request, void *arg)
{
	int r;
	do {
		r = ioctl(fd, request, arg);
	} while (r == -1 && errno == EINTR);
	return r == -1 ? -errno : 0;
}

static const char *err(int r)
{
	return r == 0 ? "0" : strerror(-r);
}

/* absolute CLOCK_MONOTONIC deadline, as the syncobj waits want it */
static int64_t deadline_in(int64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static int driver_name(int fd, char *name, size_t len)
{
	struct drm_version v = { .name = name, .name_len = len - 1 };
	memset(name, 0, len);
	return xioctl(fd, DRM_IOCTL_VERSION, &v);
}

static int timeline_wait(int fd, uint32_t handle, uint64_t point, int64_t timeout_ns, uint32_t flags)
{
	struct drm_syncobj_timeline_wait w = {
		.handles = (uintptr_t)&handle,
		.points = (uintptr_t)&point,
		.timeout_nsec = deadline_in(timeout_ns),
		.count_handles = 1,
		.flags = flags,
	};
	return xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w);
}

static int timeline_signal(int fd, uint32_t handle, uint64_t point)
{
	struct drm_syncobj_timeline_array a = {
		.handles = (uintptr_t)&handle,
		.points = (uintptr_t)&point,
		.count_handles = 1,
	};
	return xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &a);
}

static int syncobj_wait(int fd, uint32_t handle, int64_t timeout_ns)
{
	struct drm_syncobj_wait w = {
		.handles = (uintptr_t)&handle,
		.timeout_nsec = deadline_in(timeout_ns),
		.count_handles = 1,
	};
	return xioctl(fd, DRM_IOCTL_SYNCOBJ_WAIT, &w);
}

static uint32_t syncobj_create(int fd)
{
	struct drm_syncobj_create c = { 0 };
	return xioctl(fd, DRM_IOCTL_SYNCOBJ_CREATE, &c) == 0 ? c.handle : 0;
}

/* virtio_gpu: capabilities, a timeline syncobj signalled and waited, SYNCOBJ_EVENTFD */
static void probe_syncobj(int gpu)
{
	struct drm_get_cap cap = { .capability = DRM_CAP_SYNCOBJ };
	int r = xioctl(gpu, DRM_IOCTL_GET_CAP, &cap);
	check(r == 0 && cap.value == 1, "DRM_CAP_SYNCOBJ = %" PRIu64 " (%s)", (uint64_t)cap.value, err(r));
	cap = (struct drm_get_cap){ .capability = DRM_CAP_SYNCOBJ_TIMELINE };
	r = xioctl(gpu, DRM_IOCTL_GET_CAP, &cap);
	check(r == 0 && cap.value == 1, "DRM_CAP_SYNCOBJ_TIMELINE = %" PRIu64 " (%s)", (uint64_t)cap.value, err(r));

	uint32_t tl = syncobj_create(gpu);
	check(tl != 0, "SYNCOBJ_CREATE: timeline syncobj %u", tl);
	if (!tl)
		return;
	r = timeline_wait(gpu, tl, 1, 10000000, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT);
	check(r == -ETIME, "TIMELINE_WAIT point 1 before the signal times out (%s)", err(r));
	r = timeline_signal(gpu, tl, 1);
	check(r == 0, "TIMELINE_SIGNAL point 1 (%s)", err(r));
	r = timeline_wait(gpu, tl, 1, 1000000000, 0);
	check(r == 0, "TIMELINE_WAIT point 1 after the signal (%s)", err(r));

	uint64_t value = 0;
	struct drm_syncobj_timeline_array q = {
		.handles = (uintptr_t)&tl, .points = (uintptr_t)&value, .count_handles = 1 };
	r = xioctl(gpu, DRM_IOCTL_SYNCOBJ_QUERY, &q);
	check(r == 0 && value == 1, "SYNCOBJ_QUERY = %" PRIu64 " (%s)", value, err(r));

	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct probe_syncobj_eventfd e = { .handle = tl, .point = 2, .fd = efd };
	r = efd < 0 ? -errno : xioctl(gpu, PROBE_IOCTL_SYNCOBJ_EVENTFD, &e);
	int early = r == 0 && readable(efd, 0);
	int s = r ? r : timeline_signal(gpu, tl, 2);
	check(r == 0 && s == 0 && !early && readable(efd, 1000),
	      "SYNCOBJ_EVENTFD for point 2 fires when point 2 is signalled (%s)", err(r ? r : s));
	if (efd >= 0)
		close(efd);
	struct drm_syncobj_destroy d = { .handle = tl };
	xioctl(gpu, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
}

/*
 * vgem: a dumb BO with an attached fence that stays pending; its dma-buf's
 * sync_file imported into a virtio_gpu syncobj; VGEM_FENCE_SIGNAL releases both.
 */
static void probe_vgem(int gpu)
{
	char name[32];
	int render = open("/dev/dri/renderD129", O_RDWR | O_CLOEXEC);
	int r = render < 0 ? -errno : driver_name(render, name, sizeof(name));
	check(r == 0 && strcmp(name, "vgem") == 0, "/dev/dri/renderD129 is vgem (%s, %s)", r ? "-" : name, err(r));
	if (render >= 0)
		close(render);

	/* dumb buffers need the primary node */
	int vgem = open("/dev/dri/card1", O_RDWR | O_CLOEXEC);
	r = vgem < 0 ? -errno : driver_name(vgem, name, sizeof(name));
	check(r == 0 && strcmp(name, "vgem") == 0, "/dev/dri/card1 is vgem (%s, %s)", r ? "-" : name, err(r));
	if (r)
		goto out;

	struct drm_mode_create_dumb bo = { .width = 64, .height = 64, .bpp = 32 };
	r = xioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &bo);
	check(r == 0, "vgem: MODE_CREATE_DUMB -> handle %u (%s)", bo.handle, err(r));
	if (r)
		goto out;
	struct probe_vgem_fence_attach attach = { .handle = bo.handle, .flags = PROBE_VGEM_FENCE_WRITE };
	r = xioctl(vgem, PROBE_IOCTL_VGEM_FENCE_ATTACH, &attach);
	check(r == 0, "vgem: FENCE_ATTACH -> fence %u (%s)", attach.out_fence, err(r));
	if (r)
		goto out;

	struct drm_prime_handle prime = { .handle = bo.handle, .flags = DRM_CLOEXEC | DRM_RDWR, .fd = -1 };
	struct probe_dma_buf_export_sync_file sync = { .flags = PROBE_DMA_BUF_SYNC_RW, .fd = -1 };
	r = xioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime);
	if (r == 0)
		r = xioctl(prime.fd, PROBE_DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &sync);
	check(r == 0 && !readable(sync.fd, 0), "dma-buf EXPORT_SYNC_FILE: the fence is pending (%s)", err(r));

	uint32_t binary = syncobj_create(gpu);
	struct drm_syncobj_handle import = {
		.handle = binary, .flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE, .fd = sync.fd };
	int ri = r ? r : xioctl(gpu, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &import);
	int rw = ri ? ri : syncobj_wait(gpu, binary, 10000000);
	check(ri == 0 && rw == -ETIME, "sync_file imported into a virtio_gpu syncobj; SYNCOBJ_WAIT times out (%s)",
	      err(rw));

	struct probe_vgem_fence_signal signal = { .fence = attach.out_fence };
	r = xioctl(vgem, PROBE_IOCTL_VGEM_FENCE_SIGNAL, &signal);
	check(r == 0, "vgem: FENCE_SIGNAL (%s)", err(r));
	rw = ri ? ri : syncobj_wait(gpu, binary, 1000000000);
	check(rw == 0 && readable(sync.fd, 1000), "after the signal: SYNCOBJ_WAIT returns and the sync_file is ready (%s)",
	      err(rw));

	if (sync.fd >= 0)
		close(sync.fd);
	if (prime.fd >= 0)
		close(prime.fd);
	struct drm_syncobj_destroy d = { .handle = binary };
	xioctl(gpu, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
out:
	if (vgem >= 0)
		close(vgem);
}

int main(void)
{
	struct utsname u;
	uname(&u);
	printf("# probe on Linux %s\n", u.release);

	char name[32];
	int gpu = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	int r = gpu < 0 ? -errno : driver_name(gpu, name, sizeof(name));
	check(r == 0, "open /dev/dri/renderD128 (%s, %s)", r ? "-" : name, err(r));
	if (r == 0) {
		probe_syncobj(gpu);
		probe_vgem(gpu);
	}
	if (gpu >= 0)
		close(gpu);
	printf("probe: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
