/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * All rte_vhost calls live here. DPDK's vhost thread calls new_device/destroy_device; it
 * hands each event to the polling thread through the mailbox in struct uvs_daemon and waits
 * for it to be taken, so the polling thread never touches a guest's memory after
 * destroy_device has returned (DPDK may unmap it right after).
 *
 * The data path walks the rings itself (uvs_virtq) over a copy of the memory table. tx
 * (guest -> device) is always drained, even when rx is full, as the virtio spec requires:
 * control replies are bounded by the engine (owed bits and a fixed RST ring), so draining
 * cannot grow memory. rx chains are filled one packet each from the engine.
 *
 * GET_CONFIG is answered in a pre-message hook: DPDK's own handler serves only vDPA
 * devices. The message layout is DPDK-private, so our copy is checked by static_assert.
 *
 * DPDK listens on a private socket per guest (bpath); the guest's own socket is the relay's
 * (vhu_relay.c), which checks every message first. DPDK's callbacks name the device by that
 * private path. The mailbox ignores a destroy, pause or resume of a device that is not the
 * guest's current one: the relay lets a new connection replace an old one, whose device DPDK
 * may destroy after the new one went live. Nor does it start a device that is not the
 * guest's newest (newest_vid, set in new_connection on DPDK's thread, read there only).
 *
 * The rings DPDK hands over are checked once more where they are used (guest_map): each
 * part aligned and wholly inside one mapped region, in this process's addresses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_eal.h>
#include <rte_log.h>
#include <rte_vhost.h>

#include "g2g.h"
#include "uvs_vhumsg.h"
#include "uvsockd.h"

#define LOG(level, fmt, ...) RTE_LOG(level, USER1, "uvsockd: " fmt "\n", ##__VA_ARGS__)

#define VHOST_USER_SET_FEATURES 2
#define VHOST_USER_SET_MEM_TABLE 5
#define VHOST_USER_SET_VRING_NUM 8
#define VHOST_USER_SET_VRING_ADDR 9
#define VHOST_USER_SET_VRING_BASE 10
#define VHOST_USER_SET_VRING_KICK 12
#define VHOST_USER_SET_VRING_CALL 13
#define VHOST_USER_GET_CONFIG 24
#define VHOST_USER_ADD_MEM_REG 37
#define VHOST_USER_REM_MEM_REG 38
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_CONFIG 9
/* vsock's config space: le64 guest_cid. QEMU asks for 8 bytes; the protocol allows 256. */
#define VHOST_USER_MAX_CONFIG_SIZE UVS_VHUMSG_MAX_CONFIG

/* The part of DPDK's private VhostUserMsg that GET_CONFIG uses. */
struct vhost_user_config_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	uint32_t offset;
	uint32_t cfg_size;
	uint32_t cfg_flags;
	uint8_t region[VHOST_USER_MAX_CONFIG_SIZE];
} __attribute__((packed));
static_assert(offsetof(struct vhost_user_config_msg, offset) == 12, "payload after header");
static_assert(offsetof(struct vhost_user_config_msg, region) == 24, "config region");

#define UVSD_FEATURES                                                                              \
	((1ULL << UVS_VIRTIO_F_VERSION_1) | (1ULL << UVS_VHOST_USER_F_PROTOCOL_FEATURES) |         \
			(1ULL << UVS_VIRTIO_VSOCK_F_SEQPACKET))

static struct uvs_daemon *daemon_ptr; /* for DPDK callbacks, which carry only a vid */

static void guest_broken(struct uvsd_guest *g, const char *why);

static void
trace_pkt(const struct uvsd_guest *g, const char *dir, const void *raw)
{
	struct uvs_hdr h;

	memcpy(&h, raw, sizeof(h));
	LOG(DEBUG, "cid %u %s %s type %u %lu:%u -> %lu:%u len %u flags %#x buf_alloc %u fwd_cnt %u",
			g->cid, dir, uvs_op_str(h.op), h.type, (unsigned long)h.src_cid, h.src_port,
			(unsigned long)h.dst_cid, h.dst_port, h.len, h.flags, h.buf_alloc,
			h.fwd_cnt);
}

struct uvsd_guest *
uvsd_guest_by_cid(struct uvs_daemon *d, uint32_t cid)
{
	for (unsigned int i = 0; i < d->nguests; i++)
		if (d->guests[i].cid == cid)
			return &d->guests[i];
	return NULL;
}

static int
guest_index_by_vid(int vid)
{
	char path[PATH_MAX];

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) < 0)
		return -ENODEV;
	for (unsigned int i = 0; i < daemon_ptr->nguests; i++)
		if (strcmp(daemon_ptr->guests[i].bpath, path) == 0)
			return (int)i;
	return -ENOENT;
}

static void mail_post(int gi, enum uvsd_mail_kind kind, int vid, uint32_t req);

/* Requests after which memory or ring addresses or the kick/call fds may have changed.
 * DPDK handles them on a running device without destroy_device, unmapping old memory. */
static bool
changes_mapping(uint32_t request)
{
	switch (request) {
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_MEM_TABLE:
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_ADDR:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		return true;
	default:
		return false;
	}
}

static enum rte_vhost_msg_result
pre_msg(int vid, void *msg)
{
	struct vhost_user_config_msg *m = msg;
	struct uvsd_guest *g;
	int i, rc;

	if (m->request != VHOST_USER_GET_CONFIG) {
		i = guest_index_by_vid(vid);
		if (i >= 0 && changes_mapping(m->request))
			mail_post(i, UVSD_MAIL_PAUSE, vid, m->request);
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	}
	i = guest_index_by_vid(vid);
	if (i < 0)
		return RTE_VHOST_MSG_RESULT_ERR;
	g = &daemon_ptr->guests[i];
	/* the reply is written in place, in the message's own payload (lib/uvs_vhumsg.c
	 * checks the request's bounds first; fuzz_vhumsg and test_vhumsg exercise it) */
	rc = uvs_vhumsg_config_reply((uint8_t *)m + offsetof(struct vhost_user_config_msg, offset),
			m->size,
			(uint32_t)(sizeof(*m) - offsetof(struct vhost_user_config_msg, offset)),
			g->cid);
	if (rc < 0) {
		LOG(WARNING, "%s: bad GET_CONFIG (size %u offset %u len %u)", g->path, m->size,
				m->offset, m->cfg_size);
		return RTE_VHOST_MSG_RESULT_ERR;
	}
	m->size = (uint32_t)rc;
	return RTE_VHOST_MSG_RESULT_REPLY;
}

static enum rte_vhost_msg_result
post_msg(int vid, void *msg)
{
	const struct vhost_user_config_msg *m = msg;
	int i;

	if (changes_mapping(m->request)) {
		i = guest_index_by_vid(vid);
		if (i >= 0)
			mail_post(i, UVSD_MAIL_RESUME, vid, m->request);
	}
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

static const struct rte_vhost_user_extern_ops extern_ops = {
	.pre_msg_handle = pre_msg,
	.post_msg_handle = post_msg,
};

static int
new_connection(int vid)
{
	int gi = guest_index_by_vid(vid);

	/* DPDK accepts the relay's connections in the order they were made, and the relay
	 * keeps only its newest: so is this one the guest's current connection */
	if (gi >= 0)
		daemon_ptr->guests[gi].newest_vid = vid;
	if (rte_vhost_extern_callback_register(vid, &extern_ops, NULL) < 0)
		return -1; /* DPDK's callbacks answer 0 or -1 */
	return 0;
}

/* Hand an event to the polling thread and wait until it has been handled. */
static void
mail_post(int gi, enum uvsd_mail_kind kind, int vid, uint32_t req)
{
	struct uvs_daemon *d = daemon_ptr;
	uint64_t one = 1;

	pthread_mutex_lock(&d->mail_lock);
	while (d->mail_pending != 0)
		pthread_cond_wait(&d->mail_cond, &d->mail_lock);
	d->mail_pending = gi + 1;
	d->mail_kind = kind;
	d->mail_vid = vid;
	d->mail_req = req;
	d->mail_done = false;
	if (write(d->mail_efd, &one, sizeof(one)) < 0)
		LOG(ERR, "mailbox eventfd write failed");
	while (!d->mail_done && !d->stop)
		pthread_cond_wait(&d->mail_cond, &d->mail_lock);
	d->mail_pending = 0;
	pthread_cond_broadcast(&d->mail_cond);
	pthread_mutex_unlock(&d->mail_lock);
}

static int
new_device(int vid)
{
	int gi = guest_index_by_vid(vid);

	if (gi < 0)
		return -1; /* DPDK's convention for callbacks */
	if (vid != daemon_ptr->guests[gi].newest_vid) {
		/* a replaced connection whose messages, queued before the relay closed it, made
		 * its device ready after the new one's: it must not take the guest over */
		LOG(WARNING, "%s: replaced vhost device %d not started",
				daemon_ptr->guests[gi].path, vid);
		return -1; /* DPDK's convention: the device is not started */
	}
	mail_post(gi, UVSD_MAIL_NEW, vid, 0);
	return daemon_ptr->guests[gi].running ? 0 : -1;
}

static void
destroy_device(int vid)
{
	int gi = guest_index_by_vid(vid);

	if (gi >= 0)
		mail_post(gi, UVSD_MAIL_DESTROY, vid, 0);
}

static const struct rte_vhost_device_ops dev_ops = {
	.new_device = new_device,
	.destroy_device = destroy_device,
	.new_connection = new_connection,
};

static void
kick_watch(struct uvs_daemon *d, struct uvsd_guest *g, bool add)
{
	/* Only undo what was done: after a pause or a failed resume the fds may be closed and
	 * their numbers reused by something else in our epoll set. */
	if (g->kicks_watched == add)
		return;
	g->kicks_watched = add;
	for (int q = 0; q < 2; q++) {
		struct epoll_event ev = { .events = EPOLLIN };

		if (g->kickfd[q] < 0)
			continue;
		ev.data.u64 = UVS_SRV_EP_TAG(UVSD_EP_KICK, (uint64_t)(g - d->guests) * 2 + q);
		epoll_ctl(d->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, g->kickfd[q], &ev);
	}
}

/* Read the memory table and the rings from DPDK. With keep_indexes, our own ring positions
 * stay (a running device's rings were only moved or re-described). */
static int
guest_map(struct uvsd_guest *g, int vid, bool keep_indexes)
{
	struct rte_vhost_memory *mem = NULL;
	struct uvs_vhumsg_region regions[UVS_MEM_MAX_REGIONS];

	if (rte_vhost_get_mem_table(vid, &mem) < 0 || mem->nregions > UVS_MEM_MAX_REGIONS) {
		LOG(ERR, "%s: no usable memory table", g->path);
		free(mem);
		return -EINVAL;
	}
	g->mem.nregions = mem->nregions;
	for (uint32_t i = 0; i < mem->nregions; i++) {
		g->mem.regions[i].gpa = mem->regions[i].guest_phys_addr;
		g->mem.regions[i].size = mem->regions[i].size;
		g->mem.regions[i].hva = mem->regions[i].host_user_addr;
	}
	free(mem);
	for (uint32_t i = 0; i < g->mem.nregions; i++)
		regions[i] = (struct uvs_vhumsg_region){ .uaddr = g->mem.regions[i].hva,
			.size = g->mem.regions[i].size };
	for (int q = 0; q < 2; q++) {
		struct rte_vhost_vring vr;
		uint16_t last_avail = 0, last_used = 0;

		if (rte_vhost_get_vhost_vring(vid, q, &vr) < 0 || vr.desc == NULL || vr.size == 0 ||
				vr.size > UVS_VIRTQ_MAX_SIZE || (vr.size & (vr.size - 1)) != 0) {
			LOG(ERR, "%s: ring %d unusable", g->path, q);
			return -EINVAL;
		}
		/* the relay checked the front-end's addresses; these are what we will touch */
		if (uvs_vhumsg_ring_check(regions, g->mem.nregions, vr.size, (uintptr_t)vr.desc,
				    (uintptr_t)vr.avail, (uintptr_t)vr.used) != UVS_VHUMSG_OK) {
			g->vhu_refused[UVS_VHUMSG_RING_OUTSIDE_MEM]++;
			LOG(ERR, "%s: ring %d (%u entries) not inside guest memory as mapped",
					g->path, q, vr.size);
			return -EINVAL;
		}
		if (keep_indexes) {
			last_avail = g->vq[q].last_avail_idx;
			last_used = g->vq[q].used_idx;
		} else {
			rte_vhost_get_vring_base(vid, q, &last_avail, &last_used);
		}
		g->vq[q] = (struct uvs_virtq){
			.desc = (struct uvs_vring_desc *)vr.desc,
			.avail = (struct uvs_vring_avail *)vr.avail,
			.used = (struct uvs_vring_used *)vr.used,
			.size = vr.size,
			.last_avail_idx = last_avail,
			.used_idx = last_used,
			.signalled_used = last_used,
		};
		g->kickfd[q] = vr.kickfd;
		g->callfd[q] = vr.callfd;
	}
	return 0;
}

static void
guest_attach(struct uvs_daemon *d, struct uvsd_guest *g, int vid)
{
	uint64_t features = 0;
	/* the overrun penalty outlives the attach (the peer keeps it while detached): a guest
	 * must not shed it by resetting its device */
	uint32_t penalty = g->peer.penalty, penalty_next = g->peer.penalty_next;

	if (guest_map(g, vid, false) < 0)
		return;
	rte_vhost_get_negotiated_features(vid, &features);
	g->seqpacket = (features >> UVS_VIRTIO_VSOCK_F_SEQPACKET) & 1;
	g->vid = vid;
	g->broken = false;
	g->paused = false;
	g->rest = 0;
	uvsd_g2g_forget(d, g);
	uvs_peer_init(&g->peer, g->cid, g->seqpacket, g);
	g->peer.penalty = penalty;
	g->peer.penalty_next = penalty_next;
	g->running = true;
	g->rx_work = true;
	kick_watch(d, g, true);
	LOG(INFO, "%s: guest cid %u attached (seqpacket %s)", g->path, g->cid,
			g->seqpacket ? "on" : "off");
}

/* A message that remaps memory or rings is about to run (in DPDK's thread, which then
 * unmaps the old memory without calling destroy_device): stop touching the guest. */
static void
guest_pause(struct uvs_daemon *d, struct uvsd_guest *g, uint32_t req)
{
	if (!g->running || g->paused)
		return;
	kick_watch(d, g, false); /* before DPDK may close and reuse the kick fds */
	g->paused = true;
	LOG(INFO, "%s: paused for vhost-user request %u", g->path, req);
}

static void
guest_resume(struct uvs_daemon *d, struct uvsd_guest *g, uint32_t req)
{
	if (!g->running || !g->paused)
		return;
	g->paused = false;
	/* SET_VRING_BASE is the front-end moving the ring positions itself */
	if (guest_map(g, g->vid, req != VHOST_USER_SET_VRING_BASE) < 0) {
		guest_broken(g, "memory or rings unusable after a remap");
		return;
	}
	g->rx_work = true;
	kick_watch(d, g, true);
	LOG(INFO, "%s: resumed after vhost-user request %u", g->path, req);
}

static void
guest_detach(struct uvs_daemon *d, struct uvsd_guest *g)
{
	if (!g->running)
		return;
	kick_watch(d, g, false);
	g->running = false;
	uvsd_g2g_forget(d, g);
	/* Host programs see their connections to this guest reset. */
	uvs_peer_detach(d->srv.eng, &g->peer);
	for (int q = 0; q < 2; q++) {
		rte_vhost_set_vring_base(g->vid, q, g->vq[q].last_avail_idx, g->vq[q].used_idx);
		g->kickfd[q] = g->callfd[q] = -1; /* DPDK closes them; never touch them again */
	}
	g->vid = -1;
	LOG(INFO, "%s: guest cid %u detached", g->path, g->cid);
}

void
uvsd_vhost_mail(struct uvs_daemon *d)
{
	uint64_t v;

	if (read(d->mail_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		LOG(ERR, "mailbox read failed");
	pthread_mutex_lock(&d->mail_lock);
	if (d->mail_pending != 0 && !d->mail_done) {
		struct uvsd_guest *g = &d->guests[d->mail_pending - 1];
		/* an event of a device the relay has replaced since: not this guest's any more */
		bool stale = d->mail_kind != UVSD_MAIL_NEW && g->running && g->vid != d->mail_vid;

		switch (stale ? UVSD_MAIL_KIND_MAX : d->mail_kind) {
		case UVSD_MAIL_NEW:
			guest_detach(d, g);
			guest_attach(d, g, d->mail_vid);
			break;
		case UVSD_MAIL_DESTROY:
			guest_detach(d, g);
			break;
		case UVSD_MAIL_PAUSE:
			guest_pause(d, g, d->mail_req);
			break;
		case UVSD_MAIL_RESUME:
			guest_resume(d, g, d->mail_req);
			break;
		case UVSD_MAIL_KIND_MAX:
			LOG(INFO, "%s: event for replaced vhost device %d ignored", g->path,
					d->mail_vid);
			break;
		}
		d->mail_done = true;
		pthread_cond_broadcast(&d->mail_cond);
	}
	pthread_mutex_unlock(&d->mail_lock);
}

static void
call_guest(struct uvsd_guest *g, int q)
{
	/* Our own eventfd write, not rte_vhost_vring_call(): that one takes the queue lock,
	 * which DPDK's thread holds while it waits for us in a PAUSE. The cached callfd is
	 * safe: SET_VRING_CALL pauses us, and RESUME reads the new one. */
	if (uvs_virtq_publish(&g->vq[q]) && g->callfd[q] >= 0) {
		g->calls++;
		eventfd_write(g->callfd[q], 1);
	}
}

static void
guest_broken(struct uvsd_guest *g, const char *why)
{
	g->broken = true;
	g->drops[UVSD_DROP_BROKEN]++;
	LOG(ERR, "%s: %s, stopping the queues until the guest restarts", g->path, why);
}

/*
 * Take the next chain of queue q. A malformed chain is counted and returned to the guest
 * with used length 0; corrupt ring indexes stop the guest's queues.
 * @return 1 with a usable chain, 0 when there is none now, -EBADMSG after a malformed one.
 */
static int
guest_pop(struct uvsd_guest *g, int q, struct uvs_chain *ch)
{
	enum uvs_chain_err cerr;
	int rc = uvs_virtq_pop(&g->vq[q], &g->mem, false, ch, &cerr);

	if (rc == 1 && q == UVS_VQ_RX && ch->nout != 0) {
		rc = -EBADMSG; /* rx buffers must be device-writable only */
		cerr = UVS_CHAIN_ORDER;
	}
	if (rc >= 0)
		return rc;
	if (rc == -EIO || cerr == UVS_CHAIN_BAD_HEAD) {
		if (rc != -EIO)
			g->chain_err[cerr]++;
		guest_broken(g, rc == -EIO ? "corrupt avail index"
					   : "avail ring entry out of range");
		return 0;
	}
	g->chain_err[cerr]++;
	g->drops[UVSD_DROP_CHAIN]++;
	uvs_virtq_push(&g->vq[q], ch->head, 0);
	return -EBADMSG;
}

int
uvsd_guest_pop_rx(struct uvsd_guest *g, struct uvs_chain *ch)
{
	int rc;

	if (!g->running || g->broken || g->paused)
		return 0;
	rc = guest_pop(g, UVS_VQ_RX, ch);
	if (rc < 0)
		g->rest = UVSD_REFUSAL_REST;
	return rc;
}

void
uvsd_guest_small_rx(struct uvsd_guest *g, const struct uvs_chain *ch)
{
	g->drops[UVSD_DROP_SMALL_RX]++;
	uvs_virtq_push(&g->vq[UVS_VQ_RX], ch->head, 0);
	g->rest = UVSD_REFUSAL_REST;
	call_guest(g, UVS_VQ_RX);
}

void
uvsd_guest_push_rx(struct uvsd_guest *g, const struct uvs_chain *ch, uint32_t len)
{
	uvs_virtq_push(&g->vq[UVS_VQ_RX], ch->head, len);
	g->rx_call_due = true; /* the interrupt at the end of the pass (uvsd_guest_poll) */
}

/* The engine's refusals of this guest so far (uvs_drop reasons). */
static uint64_t
peer_drops(const struct uvs_peer *p)
{
	uint64_t sum = 0;

	for (int i = 0; i < UVS_DROP_MAX; i++)
		sum += p->drops[i];
	return sum;
}

/* One packet from the guest: check its header and hand it to the engine, or to the guest
 * it is for (g2g.c). @return 1 if it was taken, 0 if it was refused (and counted), -EAGAIN
 * if it waits for the other guest's buffers (the caller gives the chain back). */
static int
tx_packet(struct uvs_daemon *d, struct uvsd_guest *g, const struct uvs_chain *ch)
{
	struct uvs_hdr hdr;
	enum uvs_pkt_err perr;
	struct uvsd_guest *to;
	uint64_t drops;

	if (ch->out_len < UVS_HDR_SIZE) {
		g->pkt_err[UVS_PKT_SHORT]++;
		g->drops[UVSD_DROP_PKT]++;
		return 0;
	}
	uvs_iov_to_buf(ch->iov, ch->nout, 0, &hdr, sizeof(hdr));
	if (unlikely(rte_log_can_log(RTE_LOGTYPE_USER1, RTE_LOG_DEBUG)))
		trace_pkt(g, "rx", &hdr);
	perr = uvs_pkt_check(&hdr, ch->out_len - UVS_HDR_SIZE, g->cid, UVS_CID_HOST);
	if (perr == UVS_PKT_BAD_DST && (to = uvsd_g2g_route(d, g, hdr.dst_cid)) != NULL) {
		perr = uvs_pkt_check(&hdr, ch->out_len - UVS_HDR_SIZE, g->cid, to->cid);
		if (perr == UVS_PKT_OK)
			return uvsd_g2g_forward(g, to, ch, &hdr) ? 1 : -EAGAIN;
	}
	if (perr != UVS_PKT_OK) {
		g->g2g_off = 0; /* a waiting packet whose guest went away: the rest is dropped */
		g->pkt_err[perr]++;
		g->drops[UVSD_DROP_PKT]++;
		return 0;
	}
	drops = peer_drops(&g->peer);
	uvs_engine_rx(d->srv.eng, &g->peer, &hdr, ch->iov, ch->nout, UVS_HDR_SIZE);
	return peer_drops(&g->peer) == drops;
}

/*
 * A refused chain (malformed, a refused header, a packet the engine refused) ends the
 * guest's burst, is not work, and rests the guest's queues for UVSD_REFUSAL_REST passes: a
 * guest gets at most one refusal per that many passes, and a pass that only refuses lets the
 * loop yield. Drivers send such chains rarely, if ever; a hostile guest sends nothing else,
 * and 64 refusals per pass (4 million a second) slowed every pass, so every other guest, to
 * half, and one per pass still by a tenth or two (tests/hostile). Packets without payload
 * end the burst at UVSD_CTRL_BURST of them, for the same reason, though each is valid.
 * @return chains taken (work)
 */
static unsigned int
poll_tx(struct uvs_daemon *d, struct uvsd_guest *g, unsigned int *light)
{
	struct uvs_chain ch;
	unsigned int n, taken = 0, ctrl = 0;
	bool refused = false;
	int rc;

	if (uvsd_g2g_blocked(g))
		return 0; /* its next packet waits for another guest's rx buffers */
	for (n = 0; n < UVSD_BURST && ctrl < UVSD_CTRL_BURST && !refused; n++) {
		rc = guest_pop(g, UVS_VQ_TX, &ch);
		if (rc == 0)
			break;
		if (rc > 0) {
			int t = tx_packet(d, g, &ch);

			if (t == -EAGAIN) {
				uvs_virtq_unpop(&g->vq[UVS_VQ_TX]);
				break;
			}
			refused = t == 0;
		} else {
			refused = true;
		}
		/* tx buffers are read-only for us: used length 0 (a malformed chain is
		 * already back) */
		if (rc > 0) {
			uvs_virtq_push(&g->vq[UVS_VQ_TX], ch.head, 0);
			ctrl += ch.out_len <= UVS_HDR_SIZE;
		}
		if (refused) {
			g->rest = UVSD_REFUSAL_REST;
		} else {
			taken++;
			*light += ch.out_len <= UVS_HDR_SIZE;
		}
	}
	if (n > 0)
		call_guest(g, UVS_VQ_TX);
	return taken;
}

/* Fill rx buffers with the engine's packets; a refused buffer ends the burst, as in
 * poll_tx(). @return packets delivered (work) */
static unsigned int
poll_rx(struct uvs_daemon *d, struct uvsd_guest *g, unsigned int *light)
{
	struct uvs_chain ch;
	unsigned int n, sent = 0;
	uint32_t len;
	int rc;

	for (n = 0; n < UVSD_BURST && uvs_peer_tx_pending(&g->peer); n++) {
		rc = guest_pop(g, UVS_VQ_RX, &ch);
		if (rc == 0)
			break;
		if (rc < 0) {
			g->rest = UVSD_REFUSAL_REST;
			n++;
			break;
		}
		if (ch.in_len < UVS_HDR_SIZE) {
			/* useless to anyone: return it, or it would block the queue for ever */
			g->drops[UVSD_DROP_SMALL_RX]++;
			uvs_virtq_push(&g->vq[UVS_VQ_RX], ch.head, 0);
			g->rest = UVSD_REFUSAL_REST;
			n++;
			break;
		}
		len = uvs_engine_tx(d->srv.eng, &g->peer, ch.iov, ch.nin, ch.in_len);
		if (len == 0) {
			/* nothing to send after all: keep the buffer for later */
			uvs_virtq_unpop(&g->vq[UVS_VQ_RX]);
			break;
		}
		if (unlikely(rte_log_can_log(RTE_LOGTYPE_USER1, RTE_LOG_DEBUG))) {
			struct uvs_hdr h;

			uvs_iov_to_buf(ch.iov, ch.nin, 0, &h, sizeof(h));
			trace_pkt(g, "tx", &h);
		}
		uvs_virtq_push(&g->vq[UVS_VQ_RX], ch.head, len);
		sent++;
		*light += len == UVS_HDR_SIZE;
	}
	if (!uvs_peer_tx_pending(&g->peer))
		g->rx_work = false;
	if (n > 0)
		call_guest(g, UVS_VQ_RX);
	return sent;
}

unsigned int
uvsd_guest_poll(struct uvs_daemon *d, struct uvsd_guest *g, unsigned int *light)
{
	unsigned int n;

	if (!g->running || g->broken || g->paused)
		return 0;
	if (g->rx_call_due) { /* other guests' packets put in its rx ring (g2g.c) */
		g->rx_call_due = false;
		call_guest(g, UVS_VQ_RX);
	}
	if (g->rest > 0) {
		g->rest--;
		return 0;
	}
	n = poll_tx(d, g, light);
	if (g->rx_work && !g->broken)
		n += poll_rx(d, g, light);
	return n;
}

bool
uvsd_guest_arm(struct uvsd_guest *g)
{
	if (!g->running || g->broken || g->paused)
		return false;
	for (int q = 0; q < 2; q++)
		uvs_virtq_set_notify(&g->vq[q], true);
	/* re-check after the flag is visible: a buffer added meanwhile was not kicked */
	if (uvs_virtq_avail_count(&g->vq[UVS_VQ_TX]) != 0 && !uvsd_g2g_blocked(g))
		return true;
	return g->rx_work && uvs_virtq_avail_count(&g->vq[UVS_VQ_RX]) != 0;
}

void
uvsd_guest_kicked(struct uvs_daemon *d, struct uvsd_guest *g, int q)
{
	uint64_t v;

	(void)d;
	if (!g->running || g->paused)
		return; /* an event from the same epoll batch as a detach or pause */
	if (g->kickfd[q] >= 0 && read(g->kickfd[q], &v, sizeof(v)) > 0)
		g->kicks++;
	for (int i = 0; i < 2; i++)
		uvs_virtq_set_notify(&g->vq[i], false);
}

static void
vhu_dump(const struct uvsd_guest *g, FILE *f)
{
	fprintf(f, "  vhost_user connections %lu replaced %lu throttled %lu nofd %lu messages %lu\n",
			(unsigned long)g->vhu_conns, (unsigned long)g->vhu_replaced,
			(unsigned long)g->vhu_throttled, (unsigned long)g->vhu_nofd,
			(unsigned long)g->vhu_msgs);
	for (int i = 1; i < UVS_VHUMSG_ERR_MAX; i++)
		if (g->vhu_refused[i] != 0)
			fprintf(f, "  vhost_user_refused %s %lu\n", uvs_vhumsg_err_str(i),
					(unsigned long)g->vhu_refused[i]);
}

void
uvsd_guest_dump(const struct uvsd_guest *g, FILE *f)
{
	const struct uvs_peer *p = &g->peer;

	fprintf(f, "guest cid %u %s: %s%s%s\n", g->cid, g->path, g->running ? "running" : "stopped",
			g->paused ? " (paused)" : "", g->broken ? " BROKEN" : "");
	vhu_dump(g, f);
	if (!g->running)
		return;
	fprintf(f, "  rx_pkts %lu rx_bytes %lu tx_pkts %lu tx_bytes %lu conns %u kicks %lu calls %lu\n",
			(unsigned long)p->rx_pkts, (unsigned long)p->rx_bytes,
			(unsigned long)p->tx_pkts, (unsigned long)p->tx_bytes, p->nconns,
			(unsigned long)g->kicks, (unsigned long)g->calls);
	if (g->group[0] != '\0')
		fprintf(f, "  group %s g2g_tx_pkts %lu g2g_tx_bytes %lu g2g_rx_pkts %lu g2g_waits %lu g2g_rewritten %lu\n",
				g->group, (unsigned long)g->g2g_tx_pkts,
				(unsigned long)g->g2g_tx_bytes, (unsigned long)g->g2g_rx_pkts,
				(unsigned long)g->g2g_waits, (unsigned long)g->g2g_rewritten);
	fprintf(f, "  txq %s orphan_rst %u kicked %d rx_work %d\n",
			TAILQ_EMPTY(&p->txq) ? "empty" : "busy", p->orphan_count, p->kicked,
			g->rx_work);
	for (int q = 0; q < 2 && !g->paused; q++) {
		const struct uvs_virtq *vq = &g->vq[q];

		fprintf(f, "  vq%d size %u avail_idx %u last_avail %u used_idx %u used_flags %#x avail_flags %#x\n",
				q, vq->size, vq->avail->idx, vq->last_avail_idx, vq->used_idx,
				vq->used->flags, vq->avail->flags);
	}
	static const char *const guest_drop_names[UVSD_DROP_GUEST_MAX] = {
		[UVSD_DROP_CHAIN] = "malformed_chain",
		[UVSD_DROP_PKT] = "bad_header",
		[UVSD_DROP_BROKEN] = "rings_broken",
		[UVSD_DROP_SMALL_RX] = "rx_buffer_too_small",
	};

	for (int i = 0; i < UVSD_DROP_GUEST_MAX; i++)
		if (g->drops[i] != 0)
			fprintf(f, "  guest_drop %s %lu\n", guest_drop_names[i],
					(unsigned long)g->drops[i]);
	for (int i = 0; i < UVS_DROP_MAX; i++)
		if (p->drops[i] != 0)
			fprintf(f, "  drop %s %lu\n", uvs_drop_str(i), (unsigned long)p->drops[i]);
	for (int i = 1; i < UVS_PKT_ERR_MAX; i++)
		if (g->pkt_err[i] != 0)
			fprintf(f, "  bad_pkt %s %lu\n", uvs_pkt_err_str(i),
					(unsigned long)g->pkt_err[i]);
	for (int i = 1; i < UVS_CHAIN_ERR_MAX; i++)
		if (g->chain_err[i] != 0)
			fprintf(f, "  bad_chain %s %lu\n", uvs_chain_err_str(i),
					(unsigned long)g->chain_err[i]);
}

int
uvsd_vhost_start(struct uvs_daemon *d)
{
	daemon_ptr = d;
	for (unsigned int i = 0; i < d->nguests; i++) {
		struct uvsd_guest *g = &d->guests[i];

		g->vid = -1;
		g->kickfd[0] = g->kickfd[1] = g->callfd[0] = g->callfd[1] = -1;
		g->vhu_lfd = -1;
		g->vhu.fd = g->vhu.bfd = -1;
		g->newest_vid = -1;
	}
	for (unsigned int i = 0; i < d->nguests; i++) {
		struct uvsd_guest *g = &d->guests[i];
		/* DPDK's private socket: in the EAL runtime directory (0700), named by CID */
		int rc = snprintf(g->bpath, sizeof(g->bpath), "%s/vhost-user-%u.sock",
				rte_eal_get_runtime_dir(), g->cid);

		if (rc < 0 || (size_t)rc >= sizeof(g->bpath)) {
			LOG(ERR, "%s: runtime directory path too long", g->path);
			return -ENAMETOOLONG;
		}
		unlink(g->bpath);
		if (rte_vhost_driver_register(g->bpath, 0) < 0) {
			LOG(ERR, "%s: cannot register the vhost-user socket %s", g->path, g->bpath);
			return -EINVAL;
		}
		if (rte_vhost_driver_set_features(g->bpath, UVSD_FEATURES) < 0 ||
				rte_vhost_driver_set_protocol_features(g->bpath,
						(1ULL << VHOST_USER_PROTOCOL_F_CONFIG) |
								(1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK)) <
						0 ||
				rte_vhost_driver_callback_register(g->bpath, &dev_ops) < 0 ||
				rte_vhost_driver_start(g->bpath) < 0) {
			LOG(ERR, "%s: cannot start the vhost-user socket", g->path);
			return -EINVAL;
		}
		/* the guest's socket appears once DPDK can take what the relay passes on */
		rc = uvsd_vhu_listen(d, i);
		if (rc < 0) {
			LOG(ERR, "%s: cannot listen on the vhost-user socket: %s", g->path,
					strerror(-rc));
			return rc;
		}
	}
	return 0;
}

void
uvsd_vhost_stop(struct uvs_daemon *d)
{
	uvsd_vhu_stop(d);
	for (unsigned int i = 0; i < d->nguests; i++)
		if (d->guests[i].bpath[0] != '\0')
			rte_vhost_driver_unregister(d->guests[i].bpath);
}
