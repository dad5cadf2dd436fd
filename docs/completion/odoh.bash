# odoh completion, generated from its flag definitions (internal/clidoc): do not edit.
_odoh() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd= i words
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		query|configs|stamp|keygen|stub|completion|version|help) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	[[ -z $cmd ]] && cmd=query
	case $cmd/$prev in
	query/-log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
	query/-log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
	query/-ca|query/-config-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	query/-config|query/-ohttp-doh|query/-ohttp-keys|query/-ohttp-relay|query/-pin|query/-proxy|query/-resolve|query/-target|query/-timeout) COMPREPLY=(); return ;;
	configs/-log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
	configs/-log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
	configs/-ca|configs/-config-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	configs/-config|configs/-ohttp-doh|configs/-ohttp-keys|configs/-ohttp-relay|configs/-pin|configs/-proxy|configs/-resolve|configs/-target|configs/-timeout) COMPREPLY=(); return ;;
	stamp/-proxy|stamp/-target) COMPREPLY=(); return ;;
	keygen/-out) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	stub/-log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
	stub/-log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
	stub/-ca|stub/-config-file|stub/-cpuprofile) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	stub/-admin|stub/-cache-failure-ttl|stub/-cache-max-negative-ttl|stub/-cache-size|stub/-cache-stale-age|stub/-config|stub/-drain-timeout|stub/-gc-percent|stub/-listen|stub/-max-cache-ttl|stub/-max-inflight|stub/-max-inflight-per-name|stub/-max-tcp-conns|stub/-max-tcp-conns-per-client|stub/-memory-limit|stub/-ohttp-doh|stub/-ohttp-keys|stub/-ohttp-relay|stub/-pin|stub/-proxy|stub/-resolve|stub/-target|stub/-timeout) COMPREPLY=(); return ;;
	esac
	case $cmd in
	"query") words="-allow-same-operator -ca -config -config-file -configs-from-target -configs-via-relay -direct -http3 -json -log-format -log-level -ohttp-doh -ohttp-keys -ohttp-relay -pin -proxy -resolve -target -timeout -x ADDR -t TYPE -c CLASS -q NAME +short +json +dnssec +cd +ad +norec +noedns +bufsize= +nsid +http3 +timeout= +qr +noall +nocmd +nocomments +noquestion +noanswer +noauthority +noadditional +nostats A AAAA ANY CAA CNAME DNSKEY DS HTTPS MX NS PTR SOA SRV SVCB TXT" ;;
	"configs") words="-allow-same-operator -ca -config -config-file -configs-from-target -configs-via-relay -direct -http3 -json -log-format -log-level -ohttp-doh -ohttp-keys -ohttp-relay -pin -proxy -resolve -target -timeout" ;;
	"stamp") words="-dnssec -json -nofilter -nolog -proxy -target" ;;
	"keygen") words="-force -out" ;;
	"stub") words="-admin -allow-same-operator -ca -cache-failure-ttl -cache-max-negative-ttl -cache-size -cache-stale-age -config -config-file -configs-from-target -configs-via-relay -cpuprofile -direct -drain-timeout -gc-percent -healthcheck -http3 -listen -log-format -log-level -max-cache-ttl -max-inflight -max-inflight-per-name -max-tcp-conns -max-tcp-conns-per-client -memory-limit -ohttp-doh -ohttp-keys -ohttp-relay -pin -proxy -resolve -target -timeout" ;;
	"completion") words="" ;;
	"version") words="" ;;
	"help") words="" ;;
	esac
	((COMP_CWORD == 1)) && words="query configs stamp keygen stub completion version help $words"
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _odoh odoh
