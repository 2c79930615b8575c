/* notify_recv.c: test helper that owns a NOTIFY_SOCKET and prints each sd_notify datagram as "MS LINE" lines. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_recv SOCKET_PATH\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify_recv");
		return 1;
	}
	for (;;) {
		ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
		struct timespec ts;
		char *save = NULL;

		if (n < 0)
			return 1;
		msg[n] = '\0';
		clock_gettime(CLOCK_MONOTONIC, &ts);
		/* one datagram may carry several assignments, one a line */
		for (char *l = strtok_r(msg, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			printf("%lld %s\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, l);
		fflush(stdout);
	}
}
