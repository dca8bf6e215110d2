/*
 * rustmap-lab-lwip: the lab's lwIP host (h18, docs/lab.md). A whole IPv4 host whose TCP/IP
 * stack is lwIP (Debian's liblwip, its unix port) on a TAP device: ARP, ICMP echo, RSTs for
 * closed ports, ICMP unreachables and the listening TCP ports are lwIP's, not Linux's. It exists
 * so that OS detection (-O) is tested against a second stack that is not Linux.
 *
 * Usage: rustmap-lab-lwip ADDR NETMASK GATEWAY MAC PORT[,PORT...]
 * The TAP device is named by the environment variable PRECONFIGURED_TAPIF (lwIP's own
 * convention: with it set, lwIP attaches to that device and configures nothing on the host).
 *
 * Every open port answers data with "HTTP/1.0 200 OK" and "lwIP lab host", then closes.
 * It prints "listening tcp/PORT" once a port listens (lab.sh waits for those lines).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lwip/tcpip.h"
#include "lwip/tcp.h"
#include "lwip/netif.h"
#include "lwip/ip4_addr.h"
#include "netif/tapif.h"

#define MAX_PORTS 8

static struct netif tap_netif;
static ip4_addr_t addr, mask, gw;
static u8_t mac[6];
static u16_t ports[MAX_PORTS];
static int nports;

static const char reply[] =
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nlwIP lab host\n";

/* Close, or abort when lwIP cannot close now (out of memory). A callback that aborted must
 * return ERR_ABRT (lwIP's rule: the pcb is gone), which is what this returns then. */
static err_t finish(struct tcp_pcb *pcb)
{
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_err(pcb, NULL);
  if (tcp_close(pcb) != ERR_OK) {
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  return ERR_OK;
}

/* Data in: one reply, then close (an HTTP/1.0 server's manners). */
static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
  (void)arg;
  (void)err;
  if (p == NULL)
    return finish(pcb);
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  if (tcp_write(pcb, reply, sizeof reply - 1, TCP_WRITE_FLAG_COPY) == ERR_OK)
    tcp_output(pcb);
  return finish(pcb);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
  (void)arg;
  if (err != ERR_OK || pcb == NULL)
    return ERR_VAL;
  tcp_recv(pcb, on_recv);
  return ERR_OK;
}

/* Runs in lwIP's tcpip thread, which owns every lwIP structure. */
static void start(void *arg)
{
  (void)arg;
  if (netif_add(&tap_netif, &addr, &mask, &gw, NULL, tapif_init, tcpip_input) == NULL) {
    fprintf(stderr, "rustmap-lab-lwip: netif_add failed (is PRECONFIGURED_TAPIF a TAP device?)\n");
    exit(1);
  }
  /* tapif gives every host one fixed MAC; the lab gives each host its own */
  memcpy(tap_netif.hwaddr, mac, sizeof mac);
  netif_set_default(&tap_netif);
  netif_set_link_up(&tap_netif);
  netif_set_up(&tap_netif);
  for (int i = 0; i < nports; i++) {
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL || tcp_bind(pcb, IP4_ADDR_ANY, ports[i]) != ERR_OK) {
      fprintf(stderr, "rustmap-lab-lwip: cannot bind tcp/%u\n", ports[i]);
      exit(1);
    }
    pcb = tcp_listen(pcb);
    if (pcb == NULL) {
      fprintf(stderr, "rustmap-lab-lwip: cannot listen on tcp/%u\n", ports[i]);
      exit(1);
    }
    tcp_accept(pcb, on_accept);
    printf("listening tcp/%u (lwIP raw API)\n", ports[i]);
  }
  fflush(stdout);
}

static int parse_mac(const char *s, u8_t out[6])
{
  unsigned b[6];
  char tail;
  if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    return -1;
  for (int i = 0; i < 6; i++) {
    if (b[i] > 0xff)
      return -1;
    out[i] = (u8_t)b[i];
  }
  return 0;
}

static int parse_ports(char *s)
{
  for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
    char *end;
    long p = strtol(tok, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535 || nports == MAX_PORTS)
      return -1;
    ports[nports++] = (u16_t)p;
  }
  return nports > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
  if (argc != 6) {
    fprintf(stderr, "usage: %s ADDR NETMASK GATEWAY MAC PORT[,PORT...]\n", argv[0]);
    return 2;
  }
  if (!ip4addr_aton(argv[1], &addr) || !ip4addr_aton(argv[2], &mask) || !ip4addr_aton(argv[3], &gw)) {
    fprintf(stderr, "rustmap-lab-lwip: bad address in '%s %s %s'\n", argv[1], argv[2], argv[3]);
    return 2;
  }
  if (parse_mac(argv[4], mac) != 0) {
    fprintf(stderr, "rustmap-lab-lwip: bad MAC '%s'\n", argv[4]);
    return 2;
  }
  if (parse_ports(argv[5]) != 0) {
    fprintf(stderr, "rustmap-lab-lwip: bad port list '%s' (1-65535, at most %d)\n", argv[5], MAX_PORTS);
    return 2;
  }
  if (getenv("PRECONFIGURED_TAPIF") == NULL) {
    /* without it lwIP's tapif would create tap0 and run ifconfig on it: never here */
    fprintf(stderr, "rustmap-lab-lwip: set PRECONFIGURED_TAPIF to the TAP device to attach to\n");
    return 2;
  }
  tcpip_init(start, NULL);
  for (;;)
    pause();
}
