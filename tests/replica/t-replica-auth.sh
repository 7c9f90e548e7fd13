#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-auth.sh - who may replicate to csvfs-replicad: a primary
# whose certificate another CA signed fails the TLS handshake; one the
# right CA signed but not in the allow-list is refused by name; one
# allowed by fingerprint works, on its own group only (a group belongs
# to the certificate that created it); a client with no certificate is
# refused; and the primary refuses a replica whose certificate does not
# carry the name it expects.  SIGHUP reloads the allow-list.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-auth
rd_start || exit 99

t "primary-a (allowed by CN) sends point 1 of group 1" rsend point 1

RSEND_AS=primary-a-rogue rsend --group 1 --base 1 point 2 >rogue.out 2>&1
t "a certificate of another CA is refused" [ $? != 0 ]
t "  the primary is told its certificate was refused" \
	grep -q "refused this primary's certificate.*unknown ca" rogue.out
t "  the replica logs why" grep -q "refused:.*certificate" replicad.log

RSEND_AS=stranger RSEND_DIR=stranger rsend --group 2 point 1 >stranger.out 2>&1
t "a certified primary not in the allow-list is refused" [ $? != 0 ]
t "  and told so" grep -q "allow-list" stranger.out

RSEND_AS=primary-b RSEND_DIR=pb rsend --group 3 point 1 >pb.out 2>&1
t "primary-b (allowed by fingerprint) sends group 3" [ $? = 0 ]
mat_pb() { RSEND_DIR=pb mat_check 3 1; }
t "  group 3 point 1 materialises" mat_pb
RSEND_AS=primary-b RSEND_DIR=pb2 rsend --group 1 --base 1 point 2 >pb1.out 2>&1
t "primary-b may not write primary-a's group" [ $? != 0 ]
t "  and is told whose it is" grep -q "belongs to another primary" pb1.out

# No certificate at all: the server requires one.
timeout 10 openssl s_client -connect 127.0.0.1:"$PORT" -tls1_3 \
	-CAfile certs/ca.pem </dev/null >nocert.out 2>&1
sleep 0.3
t "a client without a certificate is refused" \
	grep -q "refused:.*the peer presented no certificate" replicad.log

# The replica's name pinned wrong.
timeout 60 "$RSEND" --port "$PORT" --cert certs/primary-a.pem \
	--key certs/primary-a.key --ca certs/ca.pem --server-name elsewhere \
	--dir primary status >name.out 2>&1
t "the primary refuses a replica with another name" [ $? != 0 ]
t "  saying the certificate is not valid" grep -q "certificate" name.out

# The allow-list reloaded on SIGHUP: stranger is let in; a broken file
# keeps the list in use.
echo "cn stranger" >>certs/allow
kill -HUP "$RD_PID"
sleep 1
RSEND_AS=stranger RSEND_DIR=stranger rsend --group 2 point 1 >stranger.out 2>&1
t "after SIGHUP the new allow-list entry is let in" [ $? = 0 ]
echo "bogus line" >>certs/allow
kill -HUP "$RD_PID"
sleep 1
t "a broken allow-list on SIGHUP is refused" \
	grep -q "keeping the allow-list in use" replicad.log
RSEND_AS=stranger RSEND_DIR=stranger rsend --group 2 --base 1 point 2 \
	>stranger.out 2>&1
t "  and the list in use still admits" [ $? = 0 ]

t "primary-a still works" rsend --base 1 point 2
t "point 2 materialises" mat_check 1 2
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
